#include <iscsi/iscsi.h>
