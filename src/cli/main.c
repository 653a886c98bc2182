#include <stdio.h>
int main(void) { puts("keel " KEEL_VERSION); return 0; }
