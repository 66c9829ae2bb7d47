#include "segflow_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
} segflow_jpeg_error_mgr;

struct segflow_jpeg_reader {
    struct jpeg_decompress_struct cinfo;
    segflow_jpeg_error_mgr error;
    struct jpeg_source_mgr source;
    const uint8_t *data;
    size_t size;
    int created;        // jpeg_create_decompress succeeded (destroy needs it)
    int truncated;
    int stage;          // 0 created, 1 header read, 2 decoded (or failed after header)
    char message[JMSG_LENGTH_MAX];
};

// error_exit must not return: record the message, then jump back into the C
// function that called libjpeg (each sets the jump point before its first call).
static void segflow_error_exit(j_common_ptr cinfo) {
    segflow_jpeg_reader *r = (segflow_jpeg_reader *)cinfo->client_data;
    (*cinfo->err->format_message)(cinfo, r->message);
    longjmp(r->error.jump, 1);
}

// Warnings and trace messages are dropped (libjpeg would print them to stderr);
// Pillow installs the same no-op, so "Corrupt JPEG data: N extraneous bytes" and
// similar recoverable problems decode exactly as in PIL.
static void segflow_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

static void segflow_init_source(j_decompress_ptr cinfo) {
    (void)cinfo;
}

// The whole input is in the buffer from the start, so being asked for more means
// the file ended early. Returning FALSE suspends libjpeg (Pillow's source does the
// same while it waits for more data, which never comes at end of file).
static boolean segflow_fill_input_buffer(j_decompress_ptr cinfo) {
    segflow_jpeg_reader *r = (segflow_jpeg_reader *)cinfo->client_data;
    r->truncated = 1;
    return FALSE;
}

static void segflow_skip_input_data(j_decompress_ptr cinfo, long num_bytes) {
    struct jpeg_source_mgr *src = cinfo->src;
    if (num_bytes <= 0) return;
    if ((size_t)num_bytes > src->bytes_in_buffer) {
        // Skipping past the end: nothing is left; the next read suspends.
        src->next_input_byte += src->bytes_in_buffer;
        src->bytes_in_buffer = 0;
        return;
    }
    src->next_input_byte += (size_t)num_bytes;
    src->bytes_in_buffer -= (size_t)num_bytes;
}

static void segflow_term_source(j_decompress_ptr cinfo) {
    (void)cinfo;
}

static void set_message(segflow_jpeg_reader *r, const char *text) {
    strncpy(r->message, text, sizeof(r->message) - 1);
    r->message[sizeof(r->message) - 1] = '\0';
}

segflow_jpeg_reader *segflow_jpeg_reader_create(const uint8_t *data, size_t size) {
    segflow_jpeg_reader *r = (segflow_jpeg_reader *)calloc(1, sizeof(*r));
    if (r == NULL) return NULL;
    r->data = data;
    r->size = size;
    r->cinfo.err = jpeg_std_error(&r->error.pub);
    r->error.pub.error_exit = segflow_error_exit;
    r->error.pub.output_message = segflow_output_message;
    r->cinfo.client_data = r;
    // jpeg_create_decompress reports allocation failure through error_exit too.
    if (setjmp(r->error.jump)) {
        if (r->created) jpeg_destroy_decompress(&r->cinfo);
        free(r);
        return NULL;
    }
    jpeg_create_decompress(&r->cinfo);
    r->created = 1;
    r->source.init_source = segflow_init_source;
    r->source.fill_input_buffer = segflow_fill_input_buffer;
    r->source.skip_input_data = segflow_skip_input_data;
    r->source.resync_to_restart = jpeg_resync_to_restart;
    r->source.term_source = segflow_term_source;
    r->source.next_input_byte = data;
    r->source.bytes_in_buffer = size;
    r->cinfo.src = &r->source;
    return r;
}

int segflow_jpeg_read_header(segflow_jpeg_reader *r, segflow_jpeg_header *h) {
    if (r->stage != 0) { set_message(r, "read_header called twice"); return -1; }
    r->stage = 2; // any failure below ends the reader's useful life
    if (setjmp(r->error.jump)) return -1;
    int status = jpeg_read_header(&r->cinfo, TRUE);
    if (status == JPEG_SUSPENDED) {
        set_message(r, "data ends before the first scan");
        return -1;
    }
    if (status != JPEG_HEADER_OK) {
        // JPEG_HEADER_TABLES_ONLY: an abbreviated table-specification stream.
        set_message(r, "no image in the stream (tables only)");
        return -1;
    }
    h->width = r->cinfo.image_width;
    h->height = r->cinfo.image_height;
    h->components = r->cinfo.num_components;
    h->color_space = (int)r->cinfo.jpeg_color_space;
    h->progressive = r->cinfo.progressive_mode ? 1 : 0;
    r->stage = 1;
    return 0;
}

int segflow_jpeg_output_channels(const segflow_jpeg_header *h) {
    switch (h->components) {
    case 1: return 1;
    case 3: return 3;
    case 4: return 4;
    default: return 0;
    }
}

int segflow_jpeg_decode(segflow_jpeg_reader *r, uint8_t *buffer, size_t buffer_size) {
    if (r->stage != 1) { set_message(r, "decode called out of order"); return -1; }
    r->stage = 2;
    struct jpeg_decompress_struct *cinfo = &r->cinfo;
    switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo->out_color_space = JCS_RGB; break;
    case 4: cinfo->out_color_space = JCS_CMYK; break; // YCCK files are converted to CMYK by libjpeg
    default:
        set_message(r, "unsupported number of components");
        return -1;
    }
    // Pillow's defaults, stated explicitly (they are also libjpeg's).
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    size_t channels = (size_t)cinfo->num_components;
    size_t stride = (size_t)cinfo->image_width * channels;
    if (stride == 0 || cinfo->image_height == 0 || buffer_size / stride < cinfo->image_height) {
        set_message(r, "output buffer too small for the image");
        return -1;
    }
    if (setjmp(r->error.jump)) return -1;
    // For progressive files this reads every scan into libjpeg's coefficient buffer.
    if (!jpeg_start_decompress(cinfo)) {
        set_message(r, "data ends inside the image data");
        return -1;
    }
    if (cinfo->output_width != cinfo->image_width || cinfo->output_height != cinfo->image_height ||
        (size_t)cinfo->output_components != channels) {
        set_message(r, "unexpected output geometry");
        return -1;
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = buffer + (size_t)cinfo->output_scanline * stride;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            set_message(r, "data ends inside the image data");
            return -1;
        }
    }
    // Every row is in. Like Pillow, a stream that stops here (no EOI) is complete,
    // but an error in what follows (a broken marker) still fails.
    (void)jpeg_finish_decompress(cinfo);
    return 0;
}

int segflow_jpeg_reader_truncated(const segflow_jpeg_reader *r) {
    return r->truncated;
}

const char *segflow_jpeg_reader_message(const segflow_jpeg_reader *r) {
    return r->message;
}

void segflow_jpeg_reader_destroy(segflow_jpeg_reader *r) {
    if (r == NULL) return;
    if (r->created) jpeg_destroy_decompress(&r->cinfo);
    free(r);
}
