/* header_alone.c - compiled as C99, C11 and C++ by ctest: abi.h must stand on
 * its own (no other include), and its layout promises must hold. */
#include <loopspec/abi.h>

/* The table starts with version, size, name, version string, capabilities. */
typedef char lspec_check_version_first[
    offsetof(struct lspec_impl, abi_version) == 0 ? 1 : -1];
typedef char lspec_check_size_second[
    offsetof(struct lspec_impl, size) == 4 ? 1 : -1];
typedef char lspec_check_name_third[
    offsetof(struct lspec_impl, name) == 8 ? 1 : -1];
typedef char lspec_check_minimum[
    LSPEC_IMPL_V1_MIN_SIZE <= LSPEC_IMPL_V1_SIZE ? 1 : -1];
typedef char lspec_check_status_ok[LSPEC_OK == 0 ? 1 : -1];

static int count_statuses(void) {
  int n = 0;
#define LSPEC_COUNT_(name, value, text) n += (value) <= 0;
  LSPEC_STATUS_MAP(LSPEC_COUNT_)
#undef LSPEC_COUNT_
  return n;
}

int main(void) {
  lspec_entry_fn entry = 0;
  (void)entry;
  (void)sizeof(lspec_check_version_first);
  (void)sizeof(lspec_check_size_second);
  (void)sizeof(lspec_check_name_third);
  (void)sizeof(lspec_check_minimum);
  (void)sizeof(lspec_check_status_ok);
  return count_statuses() == 16 ? 0 : 1;
}
