/* placeholder until the module lands */
#include "etcd-gitops/util.h"
