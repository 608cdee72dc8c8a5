/* GGUF version 3 writer (ggml's docs/gguf.md; what gguf-py's GGUFWriter writes).
 *
 * Layout: "GGUF", u32 version 3, u64 tensor count, u64 KV count, the KV pairs
 * in the order they were added, the tensor infos (name, n_dims, ne[] with ne[0]
 * the fastest-varying = last torch dimension, ggml type, offset), zero padding
 * to the alignment (32, or general.alignment when set as u32), then each
 * tensor's data padded with zeros to the alignment, in info order, so every
 * offset is the packed running sum ggml's reader requires.
 *
 * Use: m2u_gguf_new, add KVs and tensor infos, m2u_gguf_begin(path) writes the
 * header, then m2u_gguf_write_data for each tensor in order (streamed: a 7B
 * model is never held in memory twice), then m2u_gguf_finish (atomic rename)
 * or m2u_gguf_abort.  Library code: errors via m2u_fail, nothing printed. */
#ifndef M2U_GGUF_WRITER_H
#define M2U_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

enum {
    M2U_GGUF_UINT8 = 0,
    M2U_GGUF_INT8 = 1,
    M2U_GGUF_UINT16 = 2,
    M2U_GGUF_INT16 = 3,
    M2U_GGUF_UINT32 = 4,
    M2U_GGUF_INT32 = 5,
    M2U_GGUF_FLOAT32 = 6,
    M2U_GGUF_BOOL = 7,
    M2U_GGUF_STRING = 8,
    M2U_GGUF_ARRAY = 9,
    M2U_GGUF_UINT64 = 10,
    M2U_GGUF_INT64 = 11,
    M2U_GGUF_FLOAT64 = 12,
};

/* ggml tensor types this writer stores */
enum { M2U_GGML_F32 = 0, M2U_GGML_F16 = 1, M2U_GGML_BF16 = 30 };

/* token types of tokenizer.ggml.token_type */
enum {
    M2U_GGUF_TOKEN_NORMAL = 1,
    M2U_GGUF_TOKEN_UNKNOWN = 2,
    M2U_GGUF_TOKEN_CONTROL = 3,
    M2U_GGUF_TOKEN_USER_DEFINED = 4,
    M2U_GGUF_TOKEN_UNUSED = 5,
    M2U_GGUF_TOKEN_BYTE = 6,
};

typedef struct m2u_gguf_writer m2u_gguf_writer;

int m2u_gguf_new(m2u_gguf_writer **out);
void m2u_gguf_free(m2u_gguf_writer *w); /* also aborts an unfinished file */

/* Scalar KVs.  Keys must be unique (refused otherwise), ASCII, < 65536 bytes. */
int m2u_gguf_add_u8(m2u_gguf_writer *w, const char *key, uint8_t v);
int m2u_gguf_add_i8(m2u_gguf_writer *w, const char *key, int8_t v);
int m2u_gguf_add_u16(m2u_gguf_writer *w, const char *key, uint16_t v);
int m2u_gguf_add_i16(m2u_gguf_writer *w, const char *key, int16_t v);
int m2u_gguf_add_u32(m2u_gguf_writer *w, const char *key, uint32_t v);
int m2u_gguf_add_i32(m2u_gguf_writer *w, const char *key, int32_t v);
int m2u_gguf_add_u64(m2u_gguf_writer *w, const char *key, uint64_t v);
int m2u_gguf_add_i64(m2u_gguf_writer *w, const char *key, int64_t v);
int m2u_gguf_add_f32(m2u_gguf_writer *w, const char *key, float v);
int m2u_gguf_add_f64(m2u_gguf_writer *w, const char *key, double v);
int m2u_gguf_add_bool(m2u_gguf_writer *w, const char *key, int v);
int m2u_gguf_add_str(m2u_gguf_writer *w, const char *key, const char *v);
/* Arrays of a scalar type (elem_type one of the numeric/bool types; values packed
 * little-endian at the type's size) or of strings. */
int m2u_gguf_add_array(m2u_gguf_writer *w, const char *key, int elem_type, const void *values, uint64_t n);
int m2u_gguf_add_str_array(m2u_gguf_writer *w, const char *key, const char *const *values, uint64_t n);

/* Declare a tensor: ne[0..n_dims) in ggml order (ne[0] fastest), type F32/F16/BF16.
 * Names must be unique and at most 63 bytes (ggml's limit). */
int m2u_gguf_add_tensor_info(m2u_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne);
int m2u_gguf_n_tensors(const m2u_gguf_writer *w);
/* Bytes of tensor i's data. */
size_t m2u_gguf_tensor_nbytes(const m2u_gguf_writer *w, int i);

/* Write the header and infos to a temp file beside path. */
int m2u_gguf_begin(m2u_gguf_writer *w, const char *path);
/* Tensor data, in declaration order, exactly m2u_gguf_tensor_nbytes(i) bytes. */
int m2u_gguf_write_data(m2u_gguf_writer *w, int i, const void *data, size_t nbytes);
/* All tensors written: fsync and rename over path. */
int m2u_gguf_finish(m2u_gguf_writer *w);

#endif
