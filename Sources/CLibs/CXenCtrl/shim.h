#include <xenctrl.h>
