// oneDNN (Debian libdnnl-dev 2.x ships no pkg-config file: the module map links -ldnnl).
#include <oneapi/dnnl/dnnl.h>

// Debian's oneDNN is built with the OpenMP threading runtime (DNNL_CPU_THREADING_RUNTIME
// = DNNL_RUNTIME_OMP, libgomp): its thread count is OpenMP's per-thread ICV. <omp.h> lives
// in GCC's private include directory, which Swift's clang does not search, so the two
// standard OpenMP entry points used are declared here (link "gomp").
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
