// FFmpeg (Debian's libavformat, libavcodec, libswscale, libavutil) for the Video module.
// The static inline helpers stand in for what Swift cannot import: function-like macros
// (AVERROR, FFERRTAG, AV_NOPTS_VALUE) and AVFrame's fixed-size pointer arrays.
#ifndef SEGFLOW_CFFMPEG_SHIM_H
#define SEGFLOW_CFFMPEG_SHIM_H

#include <errno.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

static inline int segflow_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int segflow_averror_eof(void) { return AVERROR_EOF; }
static inline int segflow_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int segflow_averror_enomem(void) { return AVERROR(ENOMEM); }
static inline int64_t segflow_av_nopts_value(void) { return AV_NOPTS_VALUE; }

/// YUV (or any decoder output) frame -> packed RGB24 rows of `dst_stride` bytes.
static inline int segflow_sws_frame_to_packed(struct SwsContext *sws, const AVFrame *frame,
                                              uint8_t *dst, int dst_stride) {
    uint8_t *planes[4] = { dst, NULL, NULL, NULL };
    int strides[4] = { dst_stride, 0, 0, 0 };
    return sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height, planes, strides);
}

/// Packed RGB24 rows (`src_stride` bytes each) -> an allocated encoder frame.
static inline int segflow_sws_packed_to_frame(struct SwsContext *sws, const uint8_t *src, int src_stride,
                                              int src_height, AVFrame *frame) {
    const uint8_t *planes[4] = { src, NULL, NULL, NULL };
    int strides[4] = { src_stride, 0, 0, 0 };
    return sws_scale(sws, planes, strides, 0, src_height, frame->data, frame->linesize);
}

/// Tells swscale the YUV matrix and range of one side of a conversion (the other side is
/// full-range RGB). `colorspace` is an AVColorSpace; sws_getCoefficients maps
/// unspecified/unknown values to BT.601, as FFmpeg's own tools do.
static inline int segflow_sws_set_yuv_side(struct SwsContext *sws, int colorspace, int yuv_full_range, int yuv_is_source) {
    const int *yuv = sws_getCoefficients(colorspace);
    const int *rgb = sws_getCoefficients(SWS_CS_DEFAULT);
    if (yuv_is_source)
        return sws_setColorspaceDetails(sws, yuv, yuv_full_range, rgb, 1, 0, 1 << 16, 1 << 16);
    return sws_setColorspaceDetails(sws, rgb, 1, yuv, yuv_full_range, 0, 1 << 16, 1 << 16);
}

#endif
