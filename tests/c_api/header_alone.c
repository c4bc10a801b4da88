/* Compiled with -std=c11 -Wall -Wextra -pedantic -Werror: <activation.h> must stand alone in C. */
#include "activation.h"

int act_header_alone_abi(void);

int act_header_alone_abi(void) {
  return ACT_ABI_VERSION + ACT_JOB_IS_FINISHED(ACT_JOB_COMPLETED);
}
