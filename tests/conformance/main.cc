// vkhost-conformance: see tests/conformance/conformance.h.
#include "tests/conformance/conformance.h"

int main(int argc, char** argv) {
  return vkhost::conformance::RunConformance(argc, argv);
}
