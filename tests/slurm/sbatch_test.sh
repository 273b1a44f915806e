#!/usr/bin/env bash
# A real single-node Slurm, started here: munged, slurmctld and slurmd with a configuration of our
# own (loopback only, ports of our own, state in a temp directory, torn down at the end). The
# one-node sbatch script (slurm/flowrank.sbatch, less its GPU request: no GPU here) runs a small
# job with 2 tasks under srun + PMIx;
# its report must hold both ranks and the hashes of a single-process run of the same job.
#   tests/slurm/sbatch_test.sh BUILD/flowrank SOURCE_DIR
# Exit 77 (skipped) without Slurm/munge installed or without root (slurmd needs it).
set -euo pipefail
BIN=$(realpath "$1")
SRC=$(realpath "$2")
MODEL=$SRC/models/SmolLM2-135M-Instruct.Q4_1.gguf
for tool in munged slurmctld slurmd sbatch squeue srun; do
  command -v "$tool" > /dev/null || { echo "SKIP: $tool not installed (scripts/setup)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: slurmd must run as root"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: bundled model absent"; exit 77; }

work=$(mktemp -d /tmp/flowrank-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/log/*.log "$work"/out/*.out; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
  exit 1
}

mkdir -p "$work/munge" "$work/log" "$work/state" "$work/spool" "$work/out" "$work/job/fx"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --seed-file="$work/munge/seed" \
  --log-file="$work/log/munged.log" --foreground > "$work/log/munged.stdout.log" 2>&1 &
pids+=($!)

# Ports of our own next to the default ones, so a Slurm already running here is left alone.
port=$((16000 + RANDOM % 4000))
cat > "$work/slurm.conf" << CONF
ClusterName=flowrank-ci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$work/slurm.conf
slurmctld -D -i -f "$SLURM_CONF" > "$work/log/slurmctld.stdout.log" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" > "$work/log/slurmd.stdout.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  sinfo -h -o %T 2> /dev/null | grep -qE "^idle" && break
  sleep 0.2
done
sinfo -h -o %T | grep -qE "^idle" || fail "the Slurm node did not come up"

# The job: three two-step workflows over a two-file fixture, 4 tokens a step, one thread a rank.
printf 'def f():\n    return 1\n' > "$work/job/fx/b.py"
printf '# Notes\n' > "$work/job/fx/a.md"
echo '{"name":"s","tasks":[{"id":"a","prompt":"Task A."},{"id":"b","prompt":"Task B, longer."},{"id":"c","prompt":"C."}]}' > "$work/job/suite.json"
echo '{"name":"f","input":"Review.","steps":[{"name":"plan","instruction":"Plan."},{"name":"act","instruction":"Act.","uses":["plan"]}]}' > "$work/job/flow.json"
cat > "$work/job/job.toml" << JOB
name = "slurm-ci"
flow = "flow.json"
fixtures = "fx"
suite = "suite.json"
workflows = 3
device = "cpu"
model = "$MODEL"
[sampling]
max_tokens = 4
temperature = 0.7
seed = 5
[engine]
threads = 1
JOB
export FLOWRANK_CACHE_DIR=$work/cache
env -u OMPI_COMM_WORLD_SIZE "$BIN" run "$work/job/job.toml" --progress off --out "$work/local.h5" \
  > "$work/log/local.log" 2>&1 || fail "the single-process run failed"

# The script as shipped, less its GPU request (this machine has none), run from the repository.
grep -v -- '--gpus-per-task' "$SRC/slurm/flowrank.sbatch" > "$work/flowrank.sbatch"
cd "$SRC"
jobid=$(sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
  --output="$work/out/%j.out" \
  --export=ALL,JOB="$work/job/job.toml",FLOWRANK_BIN="$BIN",OUT="$work/slurm.h5",FLOWRANK_REQUEUE=0 \
  "$work/flowrank.sbatch") || fail "sbatch refused the script"
for _ in $(seq 1 1500); do
  squeue -h -j "$jobid" 2> /dev/null | grep -q . || break
  sleep 0.2
done
squeue -h -j "$jobid" 2> /dev/null | grep -q . && fail "job $jobid still running after 5 minutes"
[ -f "$work/slurm.h5" ] || fail "job $jobid wrote no report"

/usr/bin/python3 - "$work/local.h5" "$work/slurm.h5" << 'PY' || fail "reports differ"
import sys, h5py
def load(path):
    f = h5py.File(path, "r")
    steps = f["steps"][()]
    hashes = sorted((int(s["workflow"]), int(s["step"]), s["output_sha256_8"].decode()) for s in steps)
    return hashes, sorted({int(r) for r in f["ranks"][()]["rank"]}), int(f.attrs["world_size"])
local, _, _ = load(sys.argv[1])
slurm, ranks, world = load(sys.argv[2])
assert len(local) == 6, local
assert slurm == local, (slurm, local)
assert world == 2 and ranks == [0, 1], (world, ranks)
print("slurm: 2 ranks, 6 steps, hashes equal to the single-process run")
PY
echo "1 passed, 0 failed"
