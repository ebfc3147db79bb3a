/* main.c - placeholder until the replay CLI lands. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("canaryd %s\n", CANARYD_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: canaryd version\n");
    return 2;
}
