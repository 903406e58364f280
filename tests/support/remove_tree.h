/*
 * remove_tree.h — removing a directory a test created (test_make_temp_dir) with everything in
 * it, so tests that write whole model folders leave nothing behind.
 */
#ifndef SDXL_TESTS_SUPPORT_REMOVE_TREE_H
#define SDXL_TESTS_SUPPORT_REMOVE_TREE_H

/* Removes path and everything under it (symbolic links are removed, not followed). Returns 0,
 * or -1 with the first failure printed to stderr. */
int test_remove_tree(const char *path);

#endif /* SDXL_TESTS_SUPPORT_REMOVE_TREE_H */
