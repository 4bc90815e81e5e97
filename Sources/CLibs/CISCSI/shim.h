#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
