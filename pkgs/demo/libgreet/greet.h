/* libgreet: greetings, the library half of kiln's in-tree demo. */
#ifndef GREET_H
#define GREET_H

/* Writes a greeting for `name` into `buf` (at most `size` bytes) and returns its length. */
int greet_format(char *buf, unsigned long size, const char *name);

/* The library's version, for `greet --version`. */
const char *greet_version(void);

#endif
