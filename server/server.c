/* server/server.c - placeholder until the worker loop lands. */
#include "common/zn.h"
