/* Small seeded random generator (xoshiro256** seeded through splitmix64).
 * Same seed -> same stream on every machine, which the trainer's bit-exact
 * resume and the sampler's reproducibility rely on.  The state is four words,
 * so a checkpoint stores it verbatim. */
#ifndef M2U_RNG_H
#define M2U_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} m2u_rng;

void m2u_rng_seed(m2u_rng *r, uint64_t seed);
uint64_t m2u_rng_next(m2u_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float m2u_rng_uniform(m2u_rng *r);
/* Standard normal (Box-Muller). */
float m2u_rng_normal(m2u_rng *r);

#endif
