#include "segflow_png.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct segflow_png_reader {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size;
    size_t offset;
    // Heap state that a longjmp could otherwise leak lives here and is freed in destroy.
    png_bytep *rows;
    int truncated;
    int stage;          // 0 created, 1 header read, 2 prepared, 3 pixels read
    char message[256];
};

static void segflow_error(png_structp png, png_const_charp msg) {
    segflow_png_reader *r = (segflow_png_reader *)png_get_error_ptr(png);
    if (r != NULL) {
        strncpy(r->message, msg != NULL ? msg : "unknown libpng error", sizeof(r->message) - 1);
        r->message[sizeof(r->message) - 1] = '\0';
    }
    png_longjmp(png, 1);
}

// Warnings (e.g. a bad CRC on an ancillary chunk, which libpng then skips) are not
// failures; PIL tolerates the same cases.
static void segflow_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void segflow_read(png_structp png, png_bytep out, size_t length) {
    segflow_png_reader *r = (segflow_png_reader *)png_get_io_ptr(png);
    if (length > r->size - r->offset) {
        r->truncated = 1;
        png_error(png, "unexpected end of data (truncated PNG)");
    }
    memcpy(out, r->data + r->offset, length);
    r->offset += length;
}

segflow_png_reader *segflow_png_reader_create(const uint8_t *data, size_t size) {
    segflow_png_reader *r = (segflow_png_reader *)calloc(1, sizeof(*r));
    if (r == NULL) return NULL;
    r->data = data;
    r->size = size;
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, segflow_error, segflow_warning);
    if (r->png == NULL) { free(r); return NULL; }
    r->info = png_create_info_struct(r->png);
    if (r->info == NULL) {
        png_destroy_read_struct(&r->png, NULL, NULL);
        free(r);
        return NULL;
    }
    png_set_read_fn(r->png, r, segflow_read);
    // A bad CRC on an ancillary chunk is an error, not a skipped chunk: PIL
    // refuses such files ("broken PNG file"), and so does the reference pipeline.
    png_set_crc_action(r->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    // Fuzz builds only (Tests/Fuzz/run-png-fuzz.sh): ignore CRCs so mutated
    // chunks reach the decoder instead of dying at the checksum, as libpng's own
    // OSS-Fuzz harness does.
    png_set_crc_action(r->png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#endif
    return r;
}

int segflow_png_read_header(segflow_png_reader *r, segflow_png_header *h) {
    if (r->stage != 0) { strcpy(r->message, "read_header called twice"); return -1; }
    if (setjmp(png_jmpbuf(r->png))) return -1;
    png_read_info(r->png, r->info);
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(r->png, r->info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    h->width = width;
    h->height = height;
    h->bit_depth = bit_depth;
    h->color_type = color_type;
    h->interlaced = interlace != PNG_INTERLACE_NONE;
    r->stage = 1;
    return 0;
}

int segflow_png_prepare(segflow_png_reader *r, segflow_png_layout *l) {
    if (r->stage != 1) { strcpy(r->message, "prepare called out of order"); return -1; }
    if (setjmp(png_jmpbuf(r->png))) return -1;
    int color_type = png_get_color_type(r->png, r->info);
    int bit_depth = png_get_bit_depth(r->png, r->info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        // Expands indices to RGB (RGBA when tRNS is present). Indices beyond the
        // PLTE length read libpng's zero-filled 256-entry palette, i.e. black, as PIL.
        png_set_palette_to_rgb(r->png);
    } else if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        // Bit replication: 1-bit -> 0/255, 2-bit -> x*85, 4-bit -> x*17, as PIL's L;1/L;2/L;4 unpackers.
        png_set_expand_gray_1_2_4_to_8(r->png);
    }
    (void)png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    l->channels = png_get_channels(r->png, r->info);
    l->bit_depth = png_get_bit_depth(r->png, r->info);
    l->row_bytes = png_get_rowbytes(r->png, r->info);
    r->stage = 2;
    return 0;
}

int segflow_png_read_pixels(segflow_png_reader *r, uint8_t *buffer, size_t buffer_size) {
    if (r->stage != 2) { strcpy(r->message, "read_pixels called out of order"); return -1; }
    png_uint_32 height = png_get_image_height(r->png, r->info);
    size_t row_bytes = png_get_rowbytes(r->png, r->info);
    if (height == 0 || row_bytes == 0 || buffer_size / row_bytes < height) {
        strcpy(r->message, "output buffer too small for the image");
        return -1;
    }
    r->rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (r->rows == NULL) { strcpy(r->message, "out of memory for row pointers"); return -1; }
    for (png_uint_32 y = 0; y < height; y++) r->rows[y] = buffer + (size_t)y * row_bytes;
    if (setjmp(png_jmpbuf(r->png))) return -1;
    png_read_image(r->png, r->rows);
    // png_read_end is deliberately not called: PIL accepts a stream that ends after
    // the image data (missing IEND or trailing chunks cut off), and so do we.
    r->stage = 3;
    return 0;
}

int segflow_png_reader_truncated(const segflow_png_reader *r) {
    return r->truncated;
}

const char *segflow_png_reader_message(const segflow_png_reader *r) {
    return r->message;
}

void segflow_png_reader_destroy(segflow_png_reader *r) {
    if (r == NULL) return;
    png_destroy_read_struct(&r->png, &r->info, NULL);
    free(r->rows);
    free(r);
}
