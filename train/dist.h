/* Data-parallel plumbing over MPI.  One process per rank (mpirun/srun), or a
 * plain single process: MPI's singleton init gives rank 0 of 1.
 *
 * Trainable gradients are reduced in ONE call over the model's flat gradient
 * buffer (plus a few scalars appended by the caller), as llm.c and DDP do:
 * latency is paid once per step, not once per tensor. */
#ifndef M2U_DIST_H
#define M2U_DIST_H

#include <stddef.h>

typedef struct {
    int rank, size;
    int local_rank; /* rank within the node (OMPI_COMM_WORLD_LOCAL_RANK / SLURM_LOCALID) */
    int local_size; /* ranks on this node (MPI_COMM_TYPE_SHARED): they share its memory */
} m2u_dist;

int m2u_dist_init(int *argc, char ***argv, m2u_dist *d);
void m2u_dist_finalize(void);
/* Sum in place across ranks. */
int m2u_dist_allreduce_sum_f32(float *buf, size_t n);
int m2u_dist_allreduce_sum_f64(double *buf, size_t n);
/* Logical OR of a flag across ranks (e.g. "some rank saw a NaN"). */
int m2u_dist_any(int flag);
int m2u_dist_bcast(void *buf, size_t bytes, int root);
void m2u_dist_barrier(void);
/* Seconds spent in reductions since start (for the step-time breakdown). */
double m2u_dist_comm_seconds(void);

#endif
