#include "dist.h"

#include "m2u_error.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

static double g_comm;

static int env_int(const char *a, const char *b) {
    const char *v = getenv(a);
    if (!v) v = getenv(b);
    return v ? atoi(v) : 0;
}

int m2u_dist_init(int *argc, char ***argv, m2u_dist *d) {
    int provided;
    /* FUNNELED: only the main thread calls MPI; OpenMP and the prefetch thread do not. */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return m2u_fail("MPI_Init_thread failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID");
    d->local_size = 1;
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &d->local_size);
        MPI_Comm_free(&node);
    }
    return 0;
}

void m2u_dist_finalize(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

/* MPI counts are ints: reduce very large buffers in pieces. */
static int allreduce(void *buf, size_t n, MPI_Datatype t, size_t elem) {
    double t0 = MPI_Wtime();
    char *p = buf;
    while (n) {
        int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (MPI_Allreduce(MPI_IN_PLACE, p, k, t, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return m2u_fail("MPI_Allreduce failed");
        p += (size_t)k * elem;
        n -= (size_t)k;
    }
    g_comm += MPI_Wtime() - t0;
    return 0;
}

int m2u_dist_allreduce_sum_f32(float *buf, size_t n) { return allreduce(buf, n, MPI_FLOAT, sizeof(float)); }

int m2u_dist_allreduce_sum_f64(double *buf, size_t n) { return allreduce(buf, n, MPI_DOUBLE, sizeof(double)); }

int m2u_dist_any(int flag) {
    int out = flag;
    MPI_Allreduce(&flag, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out;
}

int m2u_dist_bcast(void *buf, size_t bytes, int root) {
    if (bytes > (size_t)INT_MAX) return m2u_fail("broadcast of %zu bytes is too large", bytes);
    return MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : m2u_fail("MPI_Bcast failed");
}

void m2u_dist_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

double m2u_dist_comm_seconds(void) { return g_comm; }
