/* libgreet: greetings, the library half of kiln's in-tree demo. */
#include <stdio.h>

#include "greet.h"

int greet_format(char *buf, unsigned long size, const char *name)
{
    return snprintf(buf, size, "Hello, %s, from a kiln-built library!", name);
}

const char *greet_version(void)
{
    return "1.0";
}
