/* libFuzzer target: shards that are valid HDF5 but break m2u's schema.
 *
 * Byte-level mutation (fuzz_shard) mostly breaks HDF5's own metadata, which
 * libhdf5 handles or not; m2u's job is to validate what a well-formed HDF5
 * file holds (attributes, column types, ranks, rows, offsets, tensor shapes,
 * names).  Here the input is a little program of edits applied with the HDF5
 * API to a valid shard written by m2u_shard_create (made once at start):
 * change or retype a root attribute, delete an object, replace a dataset with
 * one of another type / rank / shape (huge dimensions included: chunked, no
 * storage), patch bytes of a dataset (offsets!), set string attributes, add
 * tensor columns.  The edited file then goes through m2u_shard_open and every
 * reader call, which must refuse or read it without a memory error. */
#define FUZZ_OWN_INIT
#include "fuzz_shard_seed.h"
#include "fuzz_util.h"
#include "m2u_error.h"
#include "shard.h"

#include <hdf5.h>

static unsigned char *g_base;
static size_t g_base_n;
static char g_obj[64][96]; /* datasets and groups of the base shard */
static int g_n_obj;

static herr_t visit(hid_t o, const char *name, const H5O_info_t *info, void *op) {
    (void)o;
    (void)op;
    if (strcmp(name, ".") && g_n_obj < 64 && (info->type == H5O_TYPE_DATASET || info->type == H5O_TYPE_GROUP))
        snprintf(g_obj[g_n_obj++], sizeof g_obj[0], "%s", name);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *base = fuzz_path(1, "base.h5");
    if (make_seed(base, 16000, 4, 2, 3)) {
        fprintf(stderr, "fuzz_shard_schema: %s\n", m2u_last_error());
        abort();
    }
    FILE *fp = fopen(base, "rb");
    if (!fp) abort();
    fseek(fp, 0, SEEK_END);
    g_base_n = (size_t)ftell(fp);
    rewind(fp);
    g_base = malloc(g_base_n);
    if (!g_base || fread(g_base, 1, g_base_n, fp) != g_base_n) abort();
    fclose(fp);
    hid_t f = H5Fopen(base, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0 || H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, visit, NULL) < 0) abort();
    H5Fclose(f);
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t n, i;
} in_t;
static unsigned u8(in_t *in) { return in->i < in->n ? in->p[in->i++] : 0; }
static uint64_t u64(in_t *in) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)u8(in) << (8 * k);
    return v;
}
/* Mostly small integers (around the interesting 0..n_samples range), sometimes any 64-bit value. */
static int64_t num(in_t *in) {
    unsigned b = u8(in);
    if (b < 200) return (int64_t)b - 8;
    if (b < 250) return (int64_t)1 << (14 + (b - 200) % 48); /* 2^14 .. 2^61 */
    return (int64_t)u64(in);
}
static hsize_t dim(in_t *in) {
    unsigned b = u8(in);
    if (b < 240) return b % 9;
    return (hsize_t)1 << (b - 240 + 20); /* 2^20 .. 2^35: chunked, never written */
}
static hid_t pick_type(unsigned k) {
    static const hid_t *const t[] = {&H5T_NATIVE_UINT8_g, &H5T_NATIVE_INT16_g, &H5T_NATIVE_INT64_g,
                                     &H5T_NATIVE_FLOAT_g, &H5T_NATIVE_DOUBLE_g, &H5T_NATIVE_INT8_g,
                                     &H5T_NATIVE_UINT16_g, &H5T_NATIVE_INT32_g};
    H5open();
    return *t[k % 8];
}

/* A new dataset `name` (replacing any): type, rank 1..7, dims, contents from the input. */
static void make_dataset(hid_t f, const char *name, in_t *in) {
    hid_t type = pick_type(u8(in));
    int rank = 1 + (int)(u8(in) % 7);
    hsize_t dims[8], chunk[8];
    hsize_t total = 1;
    for (int d = 0; d < rank; d++) {
        dims[d] = dim(in);
        chunk[d] = dims[d] ? (dims[d] < 4 ? dims[d] : 4) : 1;
        total = dims[d] && total > ((hsize_t)1 << 40) / dims[d] ? ((hsize_t)1 << 40) : total * dims[d];
    }
    H5Ldelete(f, name, H5P_DEFAULT);
    hsize_t maxd[8];
    for (int d = 0; d < rank; d++) maxd[d] = H5S_UNLIMITED;
    hid_t s = H5Screate_simple(rank, dims, maxd);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_chunk(dcpl, rank, chunk);
    hid_t d = H5Dcreate2(f, name, type, s, lcpl, dcpl, H5P_DEFAULT);
    size_t es = H5Tget_size(type);
    if (d >= 0 && total * es <= 4096 && total) { /* small: fill from the input */
        unsigned char *buf = calloc(total, es);
        for (size_t k = 0; buf && k < total * es && in->i < in->n; k++) buf[k] = (unsigned char)u8(in);
        if (buf) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(s);
}

/* Overwrite a few bytes of a small dataset (offsets, clip times, present flags). */
static void patch_dataset(hid_t f, const char *name, in_t *in) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    hssize_t np = H5Sget_simple_extent_npoints(s);
    size_t es = H5Tget_size(t), n = np > 0 ? (size_t)np * es : 0;
    if (n && n <= 65536) {
        unsigned char *buf = malloc(n);
        if (buf && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
            size_t at = (size_t)(u8(in) | (u8(in) << 8)) % n;
            unsigned k = u8(in) % 17;
            for (unsigned j = 0; j < k && at + j < n; j++) buf[at + j] = (unsigned char)u8(in);
            H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        }
        free(buf);
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
}

/* Replace attribute `an` of object `on` with an integer / float / string of chosen shape. */
static void set_attr(hid_t f, const char *on, const char *an, in_t *in) {
    H5Adelete_by_name(f, on, an, H5P_DEFAULT);
    unsigned kind = u8(in) % 5;
    hsize_t n = 1 + u8(in) % 4;
    hid_t s = (u8(in) & 1) ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (H5Sget_simple_extent_type(s) == H5S_SCALAR) n = 1;
    if (kind < 3) {
        hid_t t = kind == 0 ? H5T_NATIVE_INT64 : kind == 1 ? H5T_NATIVE_INT32 : H5T_NATIVE_DOUBLE;
        int64_t iv[4];
        double dv[4];
        int32_t wv[4];
        for (hsize_t k = 0; k < n; k++) iv[k] = num(in), wv[k] = (int32_t)iv[k], dv[k] = (double)iv[k] + 0.5;
        hid_t a = H5Acreate_by_name(f, on, an, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Awrite(a, t, kind == 0 ? (void *)iv : kind == 1 ? (void *)wv : (void *)dv), H5Aclose(a);
    } else {
        char text[4][48];
        char *ptr[4];
        size_t longest = 1;
        for (hsize_t k = 0; k < n; k++) {
            size_t len = u8(in) % 47;
            for (size_t j = 0; j < len; j++) text[k][j] = (char)(u8(in) | 1); /* no NUL inside */
            text[k][len] = '\0';
            ptr[k] = text[k];
            if (len + 1 > longest) longest = len + 1;
        }
        hid_t t = H5Tcopy(H5T_C_S1);
        if (kind == 3) H5Tset_size(t, H5T_VARIABLE);
        else H5Tset_size(t, longest);
        char flat[4 * 48];
        for (hsize_t k = 0; k < n; k++) memcpy(flat + k * longest, text[k], longest);
        hid_t a = H5Acreate_by_name(f, on, an, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Awrite(a, t, kind == 3 ? (void *)ptr : (void *)flat), H5Aclose(a);
        H5Tclose(t);
    }
    H5Sclose(s);
}

static void edit(const uint8_t *data, size_t size, const char *path) {
    static const char *const root_attrs[] = {"schema_version", "n_samples", "audio_rate"};
    static const char *const obj_attrs[] = {"encoder", "config_hash", "attr_names", "rate"};
    static const char *const new_cols[] = {"features/x", "features/x_present", "media/y", "media/y_present",
                                           "features/a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q_r_s_t_u_v_w_x_y_z_0123456789_x"};
    in_t in = {data, size, 0};
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) abort();
    for (int step = 0; step < 8 && in.i < in.n; step++) {
        unsigned op = u8(&in) % 6;
        const char *obj = g_obj[u8(&in) % g_n_obj];
        switch (op) {
        case 0: set_attr(f, ".", root_attrs[u8(&in) % 3], &in); break;
        case 1: H5Ldelete(f, obj, H5P_DEFAULT); break;
        case 2: make_dataset(f, obj, &in); break;
        case 3: patch_dataset(f, obj, &in); break;
        case 4: set_attr(f, obj, obj_attrs[u8(&in) % 4], &in); break;
        default: make_dataset(f, new_cols[u8(&in) % 5], &in); break;
        }
    }
    H5Fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "shard.h5", g_base, g_base_n);
    edit(data, size, path);
    fuzz_quiet_begin();
    fuzz_read_shard(path);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
