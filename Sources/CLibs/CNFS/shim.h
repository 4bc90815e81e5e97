#include <nfsc/libnfs.h>
