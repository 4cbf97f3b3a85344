/* C API of libbraid_spm.so: SentencePiece behind plain C types (see sentencepiece_lib.h for why).
   Strings and arrays returned are malloc'ed; free them with braid_spm_free_buffer. */
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif
void* braid_spm_load(const char* path, char** error);
void braid_spm_free(void* model);
void braid_spm_free_buffer(void* buffer);
int* braid_spm_encode(void* model, const char* text, size_t length, size_t* count);
char* braid_spm_decode(void* model, const int* ids, size_t count);
char* braid_spm_id_to_piece(void* model, int id);
int braid_spm_piece_to_id(void* model, const char* piece); /* -1 when absent */
/* 0 size, 1 pad, 2 eos, 3 bos, 4 unk */
int braid_spm_info(void* model, int what);
#ifdef __cplusplus
}
#endif
