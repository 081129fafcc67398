/* util: base64 both ways, through OpenSSL's EVP encoder. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <string.h>

#include "etcd-gitops/util.h"

/* out holds len / 4 * 3 + 3 bytes: a lenient decode may end with a short group. */
static int decode(const char *in, size_t len, unsigned char *out, size_t *ret_len) {
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        if (!ctx)
                return -ENOMEM;
        int n1 = 0, n2 = 0, r = 0;
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)in, (int)len) < 0 ||
            EVP_DecodeFinal(ctx, out + n1, &n2) < 0)
                r = -EBADMSG;
        EVP_ENCODE_CTX_free(ctx);
        if (r < 0)
                return r;
        *ret_len = (size_t)n1 + (size_t)n2;
        return 0;
}

int eg_base64_decode(const char *in, char **ret, size_t *ret_len) {
        size_t n = strlen(in), len = 0;
        if (n > INT32_MAX / 2)
                return -E2BIG;
        unsigned char *out = malloc(n / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        int r = decode(in, n, out, &len);
        if (r < 0) {
                free(out);
                return r;
        }
        out[len] = 0;
        *ret = (char *)out;
        *ret_len = len;
        return 0;
}

/* OpenSSL's decoder skips whitespace and stops at '-', so the alphabet is checked first. */
int eg_base64_decode_strict(const char *in, size_t len, void *out, size_t *ret_len) {
        if (len % 4 != 0 || len > INT_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                char ch = in[i];
                if (!isalnum((unsigned char)ch) && ch != '+' && ch != '/' && !(ch == '=' && i + 2 >= len))
                        return -EBADMSG;
        }
        return decode(in, len, out, ret_len);
}

char *eg_base64_encode(const void *data, size_t len) {
        if (len > INT_MAX / 2)
                return NULL;
        char *out = malloc(4 * ((len + 2) / 3) + 1);
        if (!out)
                return NULL;
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
        return out;
}
