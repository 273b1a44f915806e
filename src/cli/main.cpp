#include <iostream>
int main() { std::cout << "flowrank (skeleton)\n"; return 0; }
