/*
 * atomic_file.h
 *		Files that are always either wholly old or wholly new on disk.
 *
 * Pure C, no PostgreSQL headers, so it can be unit-tested and killed
 * mid-write in tests.  Every function returns 0 (or a flag) on success and
 * -errno on failure.
 */
#ifndef WGPEER_ATOMIC_FILE_H
#define WGPEER_ATOMIC_FILE_H

#include <stddef.h>

/* The mode of every file and directory written here. */
#define WG_ATOMIC_FILE_MODE 0600
#define WG_ATOMIC_DIR_MODE 0700

extern int	wg_atomic_write(const char *path, const void *data, size_t len);
extern int	wg_atomic_remove(const char *path);
extern int	wg_atomic_mkdir(const char *path);
extern int	wg_atomic_unchanged(const char *path, const void *data, size_t len);
extern int	wg_atomic_is_temp_of(const char *name, const char *target);

#endif							/* WGPEER_ATOMIC_FILE_H */
