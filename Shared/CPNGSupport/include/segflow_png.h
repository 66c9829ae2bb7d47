// A tiny C layer over libpng's full read API.
//
// Why this exists: libpng reports errors by longjmp-ing out of its error
// callback. A longjmp must never cross Swift frames (Swift has no notion of it;
// skipped frames leak and corrupt ARC state), and Swift cannot call setjmp.
// The simplified png_image_* read API catches errors itself, but it cannot
// reproduce PIL's decode semantics: it applies gAMA-driven gamma correction,
// premultiplies alpha in its 16-bit formats and rescales 16-bit samples with
// rounding. So each function here establishes its own setjmp and only calls
// libpng underneath it; every longjmp stays inside one C function. The caller
// gets raw samples and does the PIL-compatible conversion in Swift.
#ifndef SEGFLOW_PNG_H
#define SEGFLOW_PNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct segflow_png_reader segflow_png_reader;

/// IHDR values exactly as the file declares them.
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;      // 1, 2, 4, 8 or 16
    int color_type;     // PNG_COLOR_TYPE_*: 0 gray, 2 rgb, 3 palette, 4 gray+alpha, 6 rgba
    int interlaced;     // 1 for Adam7
} segflow_png_header;

/// Row layout after segflow_png_prepare's transforms.
typedef struct {
    int channels;       // 1..4 (palette+tRNS expands to 4)
    int bit_depth;      // 8 or 16 (16-bit samples are big-endian)
    size_t row_bytes;
} segflow_png_layout;

/// Reads from `data[0..<size]`, which must stay alive and unchanged until destroy.
/// Returns NULL only when memory for the libpng structures cannot be allocated.
segflow_png_reader *segflow_png_reader_create(const uint8_t *data, size_t size);

/// Reads the signature and every chunk up to the first IDAT. Returns 0 on success,
/// -1 on error (see segflow_png_reader_message). Allocates nothing image-sized.
int segflow_png_read_header(segflow_png_reader *reader, segflow_png_header *header);

/// Sets the transforms (sub-8-bit gray scaled to 8 bits by bit replication,
/// palette expanded to RGB/RGBA, interlace handling; no gamma, no alpha change)
/// and reports the resulting row layout. Call after segflow_png_read_header.
int segflow_png_prepare(segflow_png_reader *reader, segflow_png_layout *layout);

/// Decodes all rows into `buffer`, which must hold layout.row_bytes * height bytes.
int segflow_png_read_pixels(segflow_png_reader *reader, uint8_t *buffer, size_t buffer_size);

/// 1 if the last failure was the input running out of bytes (a truncated file).
int segflow_png_reader_truncated(const segflow_png_reader *reader);

/// The last libpng error message (never NULL; empty if none).
const char *segflow_png_reader_message(const segflow_png_reader *reader);

void segflow_png_reader_destroy(segflow_png_reader *reader);

#ifdef __cplusplus
}
#endif

#endif
