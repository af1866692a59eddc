/* atomics: C11 <stdatomic.h> on 32- and 64-bit objects.
 *
 * fetch_add/sub/and/or/xor and exchange compile to AMO instructions
 * (amoadd/amoand/amoor/amoxor/amoswap .w/.d), compare_exchange to LR/SC
 * loops; old values and final values are printed so a wrong sign extension
 * of a .w result or a lost update shows up.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

static _Atomic int32_t counter32 = 0;
static _Atomic int64_t counter64 = 0;
static _Atomic uint32_t bits32 = 0xF0F0F0F0u;
static _Atomic uint64_t bits64 = 0xF0F0F0F0F0F0F0F0ull;

/* An atomic maximum built from a weak CAS loop (LR/SC). */
static int32_t atomic_max32(_Atomic int32_t *target, int32_t value)
{
    int32_t seen = atomic_load_explicit(target, memory_order_relaxed);
    while (seen < value &&
           !atomic_compare_exchange_weak_explicit(target, &seen, value, memory_order_acq_rel,
                                                  memory_order_relaxed))
        ;
    return seen;
}

static uint64_t atomic_mix64(_Atomic uint64_t *target, uint64_t salt)
{
    uint64_t seen = atomic_load(target);
    uint64_t wanted;
    do {
        wanted = (seen ^ salt) * 0x9E3779B97F4A7C15ull;
    } while (!atomic_compare_exchange_strong(target, &seen, wanted));
    return wanted;
}

int main(void)
{
    int64_t sum_old32 = 0;
    int64_t sum_old64 = 0;
    for (int i = 0; i < 1000; i++) {
        sum_old32 += atomic_fetch_add(&counter32, 3);
        sum_old64 += atomic_fetch_add_explicit(&counter64, (int64_t)i << 20, memory_order_relaxed);
    }
    printf("fetch_add: counter32=%d counter64=%lld sum_old32=%lld sum_old64=%lld\n", atomic_load(&counter32),
           (long long)atomic_load(&counter64), (long long)sum_old32, (long long)sum_old64);

    /* Wrap around: the .w result must be sign-extended. */
    atomic_store(&counter32, INT32_MAX);
    int32_t before_wrap = atomic_fetch_add(&counter32, 1);
    printf("wrap: before=%d after=%d\n", before_wrap, atomic_load(&counter32));
    printf("fetch_sub old=%d now=%d\n", atomic_fetch_sub(&counter32, 5), atomic_load(&counter32));

    printf("and32 old=%08x ", atomic_fetch_and(&bits32, 0xFF00FF00u));
    printf("or32 old=%08x ", atomic_fetch_or(&bits32, 0x0000000Fu));
    printf("xor32 old=%08x now=%08x\n", atomic_fetch_xor(&bits32, 0x80000001u), atomic_load(&bits32));
    printf("and64 old=%016llx ", (unsigned long long)atomic_fetch_and(&bits64, 0xFF00FF00FF00FF00ull));
    printf("or64 old=%016llx ", (unsigned long long)atomic_fetch_or(&bits64, 0x8000000000000001ull));
    printf("xor64 old=%016llx now=%016llx\n", (unsigned long long)atomic_fetch_xor(&bits64, ~0ull),
           (unsigned long long)atomic_load(&bits64));

    int32_t swapped32 = atomic_exchange(&counter32, -7);
    int64_t swapped64 = atomic_exchange(&counter64, INT64_MIN);
    printf("exchange: old32=%d new32=%d old64=%lld new64=%lld\n", swapped32, atomic_load(&counter32),
           (long long)swapped64, (long long)atomic_load(&counter64));

    _Atomic int32_t maximum = -100;
    int32_t inputs[] = {5, -3, 17, 17, 2, 40, -1000, 39};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        int32_t seen = atomic_max32(&maximum, inputs[i]);
        printf("max(%d) saw %d -> %d\n", inputs[i], seen, atomic_load(&maximum));
    }

    _Atomic uint64_t mixer = 1;
    uint64_t last = 0;
    for (uint64_t i = 0; i < 100; i++)
        last = atomic_mix64(&mixer, i);
    printf("mix64 last=%016llx\n", (unsigned long long)last);

    /* A CAS that must fail and report the current value. */
    int64_t expected = 12345;
    _Bool ok = atomic_compare_exchange_strong(&counter64, &expected, 1);
    printf("failing cas: ok=%d expected now=%lld\n", ok, (long long)expected);
    int32_t expected32 = -7;
    ok = atomic_compare_exchange_strong(&counter32, &expected32, -8);
    printf("succeeding cas: ok=%d value=%d\n", ok, atomic_load(&counter32));

    atomic_thread_fence(memory_order_seq_cst);
    return 0;
}
