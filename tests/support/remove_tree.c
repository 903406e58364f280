/*
 * remove_tree.c — rm -rf for test temp dirs (see remove_tree.h), through nftw depth-first.
 */
#include "support/remove_tree.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = type == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0)
        fprintf(stderr, "test_remove_tree: %s: %s\n", path, strerror(errno));
    return rc;
}

int test_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
