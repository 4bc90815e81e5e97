#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

/* The file handle nfs_get_fh() returns: libnfs 4.x declares the struct without defining it.
   Its layout (length, then the bytes) is checked where it is used: a length outside
   1...NFS3_FHSIZE, or a server that refuses the handle, is treated as unknown. */
struct swiftsm_nfs_fh { int len; char *val; };
