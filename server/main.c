/* server/main.c - zinc's command line (being built). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("zinc %s\n", ZN_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: zinc serve|verify|version\n");
    return 2;
}
