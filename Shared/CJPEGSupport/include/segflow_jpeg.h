// A tiny C layer over libjpeg(-turbo)'s decompressor.
//
// Why this exists: libjpeg reports fatal errors through err->error_exit, which
// must not return. The only way out is a longjmp, and a longjmp must never cross
// Swift frames (Swift cannot call setjmp, and skipped Swift frames leak and
// corrupt ARC state). So every function here that calls into libjpeg sets its own
// setjmp first; error_exit formats libjpeg's message into the reader and
// longjmps back into that same C function, which returns -1. Swift only ever sees
// return codes and the message.
//
// Decoding settings are Pillow's (src/libImaging/JpegDecode.c with the tile
// arguments JpegImagePlugin passes: rawmode "L"/"RGB"/"CMYK;I", no draft, no scale):
// dct_method JDCT_ISLOW and do_fancy_upsampling TRUE (libjpeg's defaults, which
// Pillow leaves alone), out_color_space GRAYSCALE / RGB / CMYK by component count.
// Warnings (libjpeg's "Corrupt JPEG data: ..." family) are ignored, as in Pillow.
//
// The data source is *suspending*, like Pillow's: when libjpeg wants bytes past the
// end it gets none, and the calling function reports truncation. Pillow then
// raises "image file is truncated" unless every scanline was already decoded, so a
// missing EOI is accepted exactly when Pillow accepts it.
#ifndef SEGFLOW_JPEG_H
#define SEGFLOW_JPEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct segflow_jpeg_reader segflow_jpeg_reader;

/// SOF values as libjpeg read them (jpeg_read_header; nothing image-sized allocated).
typedef struct {
    uint32_t width;
    uint32_t height;
    int components;     // 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK; anything else is refused at decode
    int color_space;    // libjpeg's J_COLOR_SPACE guess for the file (jpeg_color_space)
    int progressive;    // 1 for progressive (SOF2) files
} segflow_jpeg_header;

/// Reads from `data[0..<size]`, which must stay alive and unchanged until destroy.
/// Returns NULL only when memory for the reader cannot be allocated.
segflow_jpeg_reader *segflow_jpeg_reader_create(const uint8_t *data, size_t size);

/// Reads markers up to the first SOS. Returns 0 on success, -1 on error.
int segflow_jpeg_read_header(segflow_jpeg_reader *reader, segflow_jpeg_header *header);

/// Channels of each output pixel for the header's component count (1, 3 or 4;
/// 0 if unsupported): what segflow_jpeg_decode writes.
int segflow_jpeg_output_channels(const segflow_jpeg_header *header);

/// Decodes every scanline into `buffer` (width * channels bytes per row, rows
/// packed), which must hold width * height * channels bytes. CMYK output is as
/// stored in the file (Adobe files store it inverted; the caller converts).
/// Call after segflow_jpeg_read_header. Returns 0 on success, -1 on error.
int segflow_jpeg_decode(segflow_jpeg_reader *reader, uint8_t *buffer, size_t buffer_size);

/// 1 if the last failure was libjpeg asking for bytes past the end of the input.
int segflow_jpeg_reader_truncated(const segflow_jpeg_reader *reader);

/// The last libjpeg error message (never NULL; empty if none).
const char *segflow_jpeg_reader_message(const segflow_jpeg_reader *reader);

void segflow_jpeg_reader_destroy(segflow_jpeg_reader *reader);

#ifdef __cplusplus
}
#endif

#endif
