#ifndef WHEELFARM_CZYDIS_SHIM_H
#define WHEELFARM_CZYDIS_SHIM_H
#include <Zydis/Zydis.h>
#endif
