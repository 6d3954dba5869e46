/* tsan_shim/criterion/new/assert.h - the typed comparisons of Criterion's
 * new assertion API, for the ThreadSanitizer build; see ../criterion.h.
 * eq(type, a, b) and friends compare by the tag's C type; str compares
 * with strcmp.
 */
#ifndef LSPEC_TSAN_SHIM_NEW_ASSERT_H
#define LSPEC_TSAN_SHIM_NEW_ASSERT_H

#include <stdint.h>
#include <string.h>

/* Functions rather than macros, so a constant operand (0, NULL) does not
 * trigger -Wtype-limits. */
static inline int lt_shim_cmp_s(long long a, long long b) {
  return (a > b) - (a < b);
}
static inline int lt_shim_cmp_u(unsigned long long a, unsigned long long b) {
  return (a > b) - (a < b);
}
static inline int lt_shim_cmp_d(double a, double b) {
  return (a > b) - (a < b);
}
static inline int lt_shim_cmp_p(const void *a, const void *b) {
  return lt_shim_cmp_u((uintptr_t)a, (uintptr_t)b);
}

#define LT_SHIM_CMP_int(a, b) lt_shim_cmp_s((long long)(a), (long long)(b))
#define LT_SHIM_CMP_i32 LT_SHIM_CMP_int
#define LT_SHIM_CMP_long LT_SHIM_CMP_int
#define LT_SHIM_CMP_i64 LT_SHIM_CMP_int
#define LT_SHIM_CMP_chr LT_SHIM_CMP_int
#define LT_SHIM_CMP_u32(a, b)                                                  \
  lt_shim_cmp_u((unsigned long long)(a), (unsigned long long)(b))
#define LT_SHIM_CMP_u64 LT_SHIM_CMP_u32
#define LT_SHIM_CMP_sz LT_SHIM_CMP_u32
#define LT_SHIM_CMP_ptr(a, b) lt_shim_cmp_p((const void *)(a), (const void *)(b))
#define LT_SHIM_CMP_dbl(a, b) lt_shim_cmp_d((double)(a), (double)(b))
#define LT_SHIM_CMP_str(a, b) strcmp((a), (b))

#define eq(type, a, b) (LT_SHIM_CMP_##type(a, b) == 0)
#define ne(type, a, b) (LT_SHIM_CMP_##type(a, b) != 0)
#define lt(type, a, b) (LT_SHIM_CMP_##type(a, b) < 0)
#define le(type, a, b) (LT_SHIM_CMP_##type(a, b) <= 0)
#define gt(type, a, b) (LT_SHIM_CMP_##type(a, b) > 0)
#define ge(type, a, b) (LT_SHIM_CMP_##type(a, b) >= 0)
#define not(x) (!(x))

#endif /* LSPEC_TSAN_SHIM_NEW_ASSERT_H */
