#include <stdint.h>
#include <stdlib.h>
#include <libnbd.h>
