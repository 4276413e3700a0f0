/* codekiln.stream._native: the per-byte and per-word loops of the heuristic filters
 * and of MinHash shingling, in C.
 *
 * Each function computes exactly what a numpy implementation in Python computes (the tests
 * compare them on generated inputs); Python falls back to those when this module was not
 * built. Inputs are bytes-like objects (int64 arrays for ngram_signals, a list of bytes for
 * minhash_words, an ASCII str for find_needles); arrays go back as bytes of native-endian 64-bit
 * integers (numpy.frombuffer reads them without a copy). The long loops call
 * PyErr_CheckSignals now and then (hash-table probes included), so the filter stage's SIGALRM
 * time budget can stop them. Hash tables place keys by a random seed drawn when the module loads
 * (a run's pool workers, forked after that, share the CLI's): a crafted input cannot predict
 * slots, and no result depends on them (keys are compared exactly).
 *
 * VERSION changes whenever a function's signature or results change: Python ignores a build
 * whose VERSION is not the one it expects (a stale build in an editable checkout).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Work between two PyErr_CheckSignals calls. */
#define CHECK_EVERY (1 << 16)
#define NATIVE_VERSION 5

static uint64_t table_seed;

static unsigned char ascii_word[256];   /* [A-Za-z0-9] -> lower-cased byte, else 0 */
static unsigned char minhash_word[256]; /* [A-Za-z0-9_] or any byte >= 0x80 -> 1 */
static unsigned char alpha_byte[256], digit_byte[256], space_byte[256];

static inline uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

/* ---- words ------------------------------------------------------------------------------- */

/* Room for the ids and lengths of `cap` words. 0, or -1 with an exception set. */
static int word_arrays_new(Py_ssize_t cap, PyObject **ids, PyObject **lens)
{
    *ids = PyBytes_FromStringAndSize(NULL, cap * 8);
    *lens = PyBytes_FromStringAndSize(NULL, cap * 8);
    if (*ids == NULL || *lens == NULL) {
        Py_CLEAR(*ids);
        Py_CLEAR(*lens);
        return -1;
    }
    return 0;
}

/* A word's id: FNV-1a over its (folded) characters, then its length, mixed. */
static inline int64_t word_id(uint64_t fnv, Py_ssize_t length)
{
    return (int64_t)mix64(fnv ^ ((uint64_t)length << 56));
}

/* (ids, lengths) cut to the `count` words found; takes over both references. */
static PyObject *word_arrays_done(PyObject *ids, PyObject *lens, Py_ssize_t count)
{
    if (_PyBytes_Resize(&ids, count * 8) < 0) {
        Py_DECREF(lens);
        return NULL;
    }
    if (_PyBytes_Resize(&lens, count * 8) < 0) {
        Py_DECREF(ids);
        return NULL;
    }
    return Py_BuildValue("(NN)", ids, lens);
}

/* The functions of one bytes-like argument: fn(bytes, length), the buffer held around the call
 * and released after it on every path. */
typedef PyObject *(*bytes_fn)(const unsigned char *p, Py_ssize_t n);

static inline PyObject *with_bytes(PyObject *arg, bytes_fn fn)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = fn(view.buf, view.len);
    PyBuffer_Release(&view);
    return result;
}

/* The functions of one str argument: fn(kind, data, length) of its characters, or a TypeError
 * naming the function. */
typedef PyObject *(*str_fn)(int kind, const void *data, Py_ssize_t n);

static inline PyObject *with_str(PyObject *arg, const char *name, str_fn fn)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a str", name);
        return NULL;
    }
    return fn(PyUnicode_KIND(arg), PyUnicode_DATA(arg), PyUnicode_GET_LENGTH(arg));
}

/* A METH_O entry point `name` that hands its argument to name_of by with_bytes or with_str. */
#define BYTES_ENTRY(name) \
    static PyObject *name(PyObject *self, PyObject *arg) { return with_bytes(arg, name##_of); }
#define STR_ENTRY(name) \
    static PyObject *name(PyObject *self, PyObject *arg) { return with_str(arg, #name, name##_of); }

PyDoc_STRVAR(ascii_words_doc,
"ascii_words(data) -> (ids, lengths)\n\n"
"Words (maximal runs of [A-Za-z0-9]: '_' separates words) of ASCII bytes, case-folded: a\n"
"64-bit id per word\n"
"(equal words, equal ids) and its length, each as bytes of int64.");

static PyObject *ascii_words_of(const unsigned char *p, Py_ssize_t n)
{
    PyObject *ids, *lens;
    /* words are separated: at most n / 2 + 1 of them */
    if (word_arrays_new(n / 2 + 1, &ids, &lens) < 0)
        return NULL;
    int64_t *id_out = (int64_t *)PyBytes_AS_STRING(ids);
    int64_t *len_out = (int64_t *)PyBytes_AS_STRING(lens);
    Py_ssize_t count = 0, i = 0;
    while (i < n) {
        if (!ascii_word[p[i]]) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        uint64_t h = 0xCBF29CE484222325ULL; /* FNV-1a over the folded bytes */
        while (i < n && ascii_word[p[i]]) {
            h = (h ^ ascii_word[p[i]]) * 0x100000001B3ULL;
            i++;
        }
        id_out[count] = word_id(h, i - start);
        len_out[count] = i - start;
        count++;
    }
    return word_arrays_done(ids, lens, count);
}

/* ---- character classes and lines of ASCII bytes ------------------------------------------- */

PyDoc_STRVAR(ascii_profile_doc,
"ascii_profile(data) -> (letters, digits, whitespace, longest_line)\n\n"
"Counts of [A-Za-z], [0-9] and [ \\t\\n\\r\\v\\f] bytes, and the bytes of the longest\n"
"\\n-separated line (the break not counted).");

static PyObject *ascii_profile_of(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t alpha = 0, digit = 0, space = 0, longest = 0, line_start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        alpha += alpha_byte[c];
        digit += digit_byte[c];
        space += space_byte[c];
        if (c == '\n') {
            if (i - line_start > longest)
                longest = i - line_start;
            line_start = i + 1;
        }
    }
    if (n - line_start > longest)
        longest = n - line_start;
    return Py_BuildValue("(nnnn)", alpha, digit, space, longest);
}

/* ---- runs that may hold hex byte dumps ---------------------------------------------------- */

PyDoc_STRVAR(hex_runs_doc,
"hex_runs(data, min_digits) -> bytes\n\n"
"(start, end) pairs, as int64, of the maximal runs of ASCII bytes a hex-dump pattern can\n"
"match (hex digits, x, X, backslash, comma, whitespace incl. \\x1c-\\x1f) that hold at least\n"
"min_digits hex digits.");

static unsigned char hex_run_byte[256], hex_digit_byte[256], base64_byte[256];

typedef struct {
    int64_t *pairs;
    Py_ssize_t found, cap;
} pairs_t;

static int pairs_add(pairs_t *out, Py_ssize_t start, Py_ssize_t end)
{
    if (out->found == out->cap) {
        Py_ssize_t cap = out->cap ? out->cap * 2 : 16;
        int64_t *grown = realloc(out->pairs, cap * 2 * sizeof(int64_t));
        if (grown == NULL)
            return -1;
        out->pairs = grown;
        out->cap = cap;
    }
    out->pairs[2 * out->found] = start;
    out->pairs[2 * out->found + 1] = end;
    out->found++;
    return 0;
}

/* The runs of bytes with in_run[b] set whose weight[b] sum to min_weight or more. Branch-free
 * but for the rare run that qualifies: code alternates between run and non-run bytes every
 * few bytes, which a branch per byte mispredicts. */
static PyObject *weighted_runs(PyObject *args, const unsigned char *in_run,
                               const unsigned char *weight)
{
    Py_buffer view;
    Py_ssize_t min_weight;
    if (!PyArg_ParseTuple(args, "y*n", &view, &min_weight))
        return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t n = view.len, start = 0, sum = 0;
    pairs_t out = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t in = in_run[p[i]];
        if (__builtin_expect(!in && sum >= min_weight, 0) && pairs_add(&out, start, i) < 0)
            goto nomem;
        sum = (sum + weight[p[i]]) & -in;
        start = in ? start : i + 1;
    }
    if (sum >= min_weight && pairs_add(&out, start, n) < 0)
        goto nomem;
    PyBuffer_Release(&view);
    PyObject *result =
        PyBytes_FromStringAndSize((const char *)out.pairs, out.found * 2 * sizeof(int64_t));
    free(out.pairs);
    return result;
nomem:
    PyBuffer_Release(&view);
    free(out.pairs);
    return PyErr_NoMemory();
}

static PyObject *hex_runs(PyObject *self, PyObject *args)
{
    return weighted_runs(args, hex_run_byte, hex_digit_byte);
}

PyDoc_STRVAR(base64_runs_doc,
"base64_runs(data, min_length) -> bytes\n\n"
"(start, end) pairs, as int64, of the maximal runs of base64-alphabet bytes ([A-Za-z0-9+/=]\n"
"and \\n) at least min_length long.");

static PyObject *base64_runs(PyObject *self, PyObject *args)
{
    return weighted_runs(args, base64_byte, base64_byte);
}

/* ---- words and character classes of any str ------------------------------------------- */

PyDoc_STRVAR(str_tokens_doc,
"str_tokens(text) -> (ids, lengths)\n\n"
"Tokens of a str as the regular expression \\w+|[^\\w\\s]+ finds them (nltk's wordpunct\n"
"tokenizer): runs of word characters (str.isalnum(), or '_') and runs of other characters\n"
"that are not whitespace (str.isspace()); a 64-bit id per token (equal tokens, equal ids) and\n"
"its length in characters, each as bytes of int64. Callers normalise the text first.");

static PyObject *str_tokens_of(int kind, const void *data, Py_ssize_t n)
{
    PyObject *ids, *lens;
    /* a word and a run of other characters need no separator: up to one token a character */
    if (word_arrays_new(n + 1, &ids, &lens) < 0)
        return NULL;
    int64_t *id_out = (int64_t *)PyBytes_AS_STRING(ids);
    int64_t *len_out = (int64_t *)PyBytes_AS_STRING(lens);
    Py_ssize_t count = 0, i = 0;
    /* 0: whitespace, 1: word character, 2: any other character */
#define CLASS_OF(ch) \
    (((ch) == '_' || Py_UNICODE_ISALNUM(ch)) ? 1 : Py_UNICODE_ISSPACE(ch) ? 0 : 2)
    while (i < n) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        int cls = CLASS_OF(ch);
        if (cls == 0) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        uint64_t h = 0xCBF29CE484222325ULL;
        while (i < n && CLASS_OF(ch = PyUnicode_READ(kind, data, i)) == cls) {
            h = (h ^ ch) * 0x100000001B3ULL;
            i++;
        }
        id_out[count] = word_id(h, i - start);
        len_out[count] = i - start;
        count++;
    }
#undef CLASS_OF
    return word_arrays_done(ids, lens, count);
}

PyDoc_STRVAR(str_classes_doc,
"str_classes(text) -> (letters, digits, whitespace)\n\n"
"ASCII characters counted as [A-Za-z], [0-9] and [ \\t\\n\\r\\v\\f]; every other character\n"
"by str.isalpha(), else str.isdigit(), else str.isspace().");

static PyObject *str_classes_of(int kind, const void *data, Py_ssize_t n)
{
    Py_ssize_t alpha = 0, digit = 0, space = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 128) {
            alpha += alpha_byte[ch];
            digit += digit_byte[ch];
            space += space_byte[ch];
        }
        else if (Py_UNICODE_ISALPHA(ch))
            alpha++;
        else if (Py_UNICODE_ISDIGIT(ch))
            digit++;
        else if (Py_UNICODE_ISSPACE(ch))
            space++;
    }
    return Py_BuildValue("(nnn)", alpha, digit, space);
}

/* ---- word n-gram signals ------------------------------------------------------------------ */

static inline int same_words(const int64_t *a, const int64_t *b, int n)
{
    for (int k = 0; k < n; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

typedef struct {
    uint64_t *key;  /* n-gram hash */
    int32_t *first; /* position of its first occurrence */
    int32_t *count; /* occurrences; 0: empty slot */
    size_t mask;
} table_t;

#define TOP_MIN 2
#define TOP_MAX 4
#define DUPE_MIN 5
#define DUPE_MAX 10

PyDoc_STRVAR(ngram_signals_doc,
"ngram_signals(ids, lengths) -> (top_2, top_3, top_4, dupe_5, ..., dupe_10)\n\n"
"Word n-gram repetition signals of one document from its word ids and lengths (int64\n"
"buffers of equal size). top_n: character share of the most frequent n-gram times its\n"
"count (0 when no n-gram repeats; among equally frequent ones the first in the text\n"
"counts; overlapping occurrences can make it exceed 1). dupe_n: character share of the\n"
"words covered by an n-gram that occurs twice or more.\n"
"N-grams are equal when their word ids are equal.");

/* A C-contiguous buffer of 64-bit integers (a numpy int64 array), or an error. */
static int get_int64_buffer(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    if (view->itemsize != 8 || (strcmp(f, "q") && strcmp(f, "l"))) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "ngram_signals: expected int64 arrays");
        return -1;
    }
    return 0;
}

static PyObject *ngram_signals(PyObject *self, PyObject *args)
{
    PyObject *ids_obj, *lens_obj;
    Py_buffer ids_view, lens_view;
    double out[DUPE_MAX + 1] = {0};
    if (!PyArg_ParseTuple(args, "OO", &ids_obj, &lens_obj))
        return NULL;
    if (get_int64_buffer(ids_obj, &ids_view) < 0)
        return NULL;
    if (get_int64_buffer(lens_obj, &lens_view) < 0) {
        PyBuffer_Release(&ids_view);
        return NULL;
    }
    PyObject *result = NULL;
    uint64_t *hash = NULL;
    int32_t *slot_of = NULL;
    int32_t *pos = NULL;
    int64_t *cum = NULL;
    table_t t = {NULL, NULL, NULL, 0};

    if (ids_view.len != lens_view.len || ids_view.len % 8) {
        PyErr_SetString(PyExc_ValueError, "ids and lengths must be int64 buffers of one size");
        goto done;
    }
    Py_ssize_t total = ids_view.len / 8;
    if (total >= INT32_MAX / 2) {
        PyErr_SetString(PyExc_OverflowError, "too many words");
        goto done;
    }
    const int64_t *ids = ids_view.buf;
    const int64_t *lens = lens_view.buf;
    cum = malloc((total + 1) * sizeof(int64_t));
    if (cum == NULL)
        goto nomem;
    cum[0] = 0;
    for (Py_ssize_t i = 0; i < total; i++)
        cum[i + 1] = cum[i] + lens[i];
    int64_t word_chars = cum[total];
    if (total < TOP_MIN || word_chars == 0)
        goto build;

    size_t cap = 16;
    while (cap < 2 * (size_t)total)
        cap <<= 1;
    t.mask = cap - 1;
    t.key = malloc(cap * sizeof(uint64_t));
    t.first = malloc(cap * sizeof(int32_t));
    t.count = malloc(cap * sizeof(int32_t));
    hash = malloc(total * sizeof(uint64_t));
    slot_of = malloc(total * sizeof(int32_t));
    pos = malloc(total * sizeof(int32_t));
    if (!t.key || !t.first || !t.count || !hash || !slot_of || !pos)
        goto nomem;

    /* pos[0..live): the positions whose (n-1)-gram occurs twice or more, in text order. An
     * n-gram can repeat only where its (n-1)-word prefix does, so each size looks only at
     * the positions the last one kept (bigrams start from every position: in code nearly
     * every word repeats). hash[k] is the hash of the n-gram at pos[k]. */
    Py_ssize_t live = total;
    for (Py_ssize_t i = 0; i < total; i++) {
        pos[i] = (int32_t)i;
        hash[i] = (uint64_t)ids[i];
    }
    long work = 0;
    for (int n = 2; n <= DUPE_MAX && live > 0; n++) {
        Py_ssize_t starts = total - n + 1; /* positions of whole n-grams */
        while (live > 0 && pos[live - 1] >= starts)
            live--;
        if (live == 0)
            break;
        memset(t.count, 0, cap * sizeof(int32_t));
        int32_t top = 0;
        for (Py_ssize_t k = 0; k < live; k++) {
            int32_t i = pos[k];
            uint64_t h = hash[k] * 0x9E3779B97F4A7C15ULL + (uint64_t)ids[i + n - 1];
            hash[k] = h;
            size_t s = mix64(h ^ table_seed) & t.mask;
            for (;;) {
                if (++work >= CHECK_EVERY) {
                    work = 0;
                    if (PyErr_CheckSignals() < 0)
                        goto done;
                }
                if (t.count[s] == 0) {
                    t.key[s] = h;
                    t.first[s] = i;
                    t.count[s] = 1;
                    break;
                }
                if (t.key[s] == h && same_words(ids + t.first[s], ids + i, n)) {
                    t.count[s]++;
                    break;
                }
                s = (s + 1) & t.mask;
            }
            slot_of[k] = (int32_t)s;
            if (t.count[s] > top)
                top = t.count[s];
        }
        if (n >= TOP_MIN && n <= TOP_MAX && top >= 2) {
            /* Among equally frequent n-grams the one first in the text counts (what
             * Counter.most_common(1) returns upstream). */
            int64_t chars = 0;
            for (Py_ssize_t k = 0; k < live; k++) {
                int32_t s = slot_of[k], i = pos[k];
                if (t.count[s] == top && t.first[s] == i) {
                    chars = cum[i + n] - cum[i];
                    break;
                }
            }
            out[n] = (double)(chars * top) / (double)word_chars;
        }
        /* Keep the repeated n-grams (in place: the list only shrinks). */
        Py_ssize_t kept = 0;
        for (Py_ssize_t k = 0; k < live; k++) {
            if (t.count[slot_of[k]] >= 2) {
                pos[kept] = pos[k];
                hash[kept] = hash[k];
                kept++;
            }
        }
        live = kept;
        if (n >= DUPE_MIN) {
            /* The words covered by the repeated n-grams [p, p + n): a union of intervals,
             * their starts in increasing order. */
            int64_t covered = 0;
            Py_ssize_t end = 0;
            for (Py_ssize_t k = 0; k < live; k++) {
                Py_ssize_t a = pos[k] > end ? pos[k] : end, b = (Py_ssize_t)pos[k] + n;
                if (b > a)
                    covered += cum[b] - cum[a];
                if (b > end)
                    end = b;
            }
            out[n] = (double)covered / (double)word_chars;
        }
    }
    goto build;
nomem:
    PyErr_NoMemory();
    goto done;
build:
    result = Py_BuildValue("(ddddddddd)", out[2], out[3], out[4], out[5], out[6], out[7],
                           out[8], out[9], out[10]);
done:
    free(t.key);
    free(t.first);
    free(t.count);
    free(hash);
    free(slot_of);
    free(pos);
    free(cum);
    PyBuffer_Release(&ids_view);
    PyBuffer_Release(&lens_view);
    return result;
}

/* ---- comments and strings of Python source ----------------------------------------------- */

/* The end of a triple-quoted literal whose opening quotes start at `at`:
 * q q q [^q\\]* ((\\. | q(?!qq)) [^q\\]*)* (q q q)?  (a backslash may escape a line break). */
static Py_ssize_t triple_end(const char *s, Py_ssize_t n, Py_ssize_t at, char q)
{
    Py_ssize_t i = at + 3;
    for (;;) {
        while (i < n && s[i] != q && s[i] != '\\')
            i++;
        if (i >= n)
            return n;
        if (s[i] == '\\') {
            if (i + 1 >= n)
                return i; /* a final backslash escapes nothing: the literal ends before it */
            i += 2;
            continue;
        }
        if (i + 2 < n && s[i + 1] == q && s[i + 2] == q)
            return i + 3;
        i++;
    }
}

/* The end of a one-line literal opened at `at`: q [^q\\\n]* (\\. [^q\\\n]*)* q? */
static Py_ssize_t single_end(const char *s, Py_ssize_t n, Py_ssize_t at, char q)
{
    Py_ssize_t i = at + 1;
    for (;;) {
        while (i < n && s[i] != q && s[i] != '\\' && s[i] != '\n')
            i++;
        if (i >= n || s[i] == '\n')
            return i;
        if (s[i] == q)
            return i + 1;
        if (i + 1 >= n)
            return i;
        i += 2;
    }
}

static int append_str(PyObject *list, const char *s, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *piece = PyUnicode_DecodeUTF8(s + start, end - start, "surrogatepass");
    if (piece == NULL)
        return -1;
    int rc = PyList_Append(list, piece);
    Py_DECREF(piece);
    return rc;
}

static unsigned char py_special[256];

PyDoc_STRVAR(scan_python_doc,
"scan_python(source) -> (code, comments, strings)\n\n"
"One pass over Python source (UTF-8, \"surrogatepass\") given with a leading line break, as the regular\n"
"expression of codekiln.stream.filters.document splits it: # comments and docstrings (a\n"
"triple-quoted literal starting its line, optionally prefixed by one of rRuU) are comments,\n"
"other quoted literals strings. code is the source without the leading break, comments\n"
"removed and each docstring replaced by a line break.");

static PyObject *scan_python_of(const unsigned char *bytes, Py_ssize_t n)
{
    const char *s = (const char *)bytes;
    PyObject *comments = PyList_New(0), *strings = PyList_New(0), *result = NULL;
    char *code = malloc(n + 1);
    if (comments == NULL || strings == NULL || code == NULL) {
        if (code == NULL)
            PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t i = 0, copied = 0, size = 0; /* s[copied:i] is code not yet copied */
    long work = 0;
    while (i < n) {
        while (i < n && !py_special[(unsigned char)s[i]])
            i++;
        if (i >= n)
            break;
        char c = s[i];
        Py_ssize_t end;
        int comment;
        if (c == '#') {
            end = i + 1;
            while (end < n && s[end] != '\n')
                end++;
            comment = 1;
        }
        else if (c == '\n') {
            Py_ssize_t j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j < n && (s[j] == 'r' || s[j] == 'R' || s[j] == 'u' || s[j] == 'U'))
                j++;
            if (j + 2 < n && (s[j] == '"' || s[j] == '\'') && s[j + 1] == s[j] &&
                s[j + 2] == s[j]) {
                end = triple_end(s, n, j, s[j]);
                comment = 1;
            }
            else {
                i++;
                continue;
            }
        }
        else {
            end = (i + 2 < n && s[i + 1] == c && s[i + 2] == c) ? triple_end(s, n, i, c)
                                                                 : single_end(s, n, i, c);
            comment = 0;
        }
        memcpy(code + size, s + copied, i - copied);
        size += i - copied;
        if (comment) {
            if (c == '\n')
                code[size++] = '\n';
            if (append_str(comments, s, i, end) < 0)
                goto done;
        }
        else {
            memcpy(code + size, s + i, end - i);
            size += end - i;
            if (append_str(strings, s, i, end) < 0)
                goto done;
        }
        i = copied = end;
        if (++work >= CHECK_EVERY / 16) {
            work = 0;
            if (PyErr_CheckSignals() < 0)
                goto done;
        }
    }
    memcpy(code + size, s + copied, n - copied);
    size += n - copied;
    {
        PyObject *text =
            PyUnicode_DecodeUTF8(code + (size > 0), size > 0 ? size - 1 : 0, "surrogatepass");
        if (text != NULL)
            result = Py_BuildValue("(NOO)", text, comments, strings);
    }
done:
    free(code);
    Py_XDECREF(comments);
    Py_XDECREF(strings);
    return result;
}

/* ---- substrings of ASCII text, case-insensitively -------------------------------------- */

static unsigned char ascii_lower[256];

PyDoc_STRVAR(find_needles_doc,
"find_needles(text, needles, limit) -> int\n\n"
"Bit k set when needles[k] (lower-case bytes, at most 64 of them, none empty) occurs in\n"
"text[:limit].lower(); text must be an ASCII str.");

static PyObject *find_needles(PyObject *self, PyObject *args)
{
    PyObject *text, *needles;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "UO!n", &text, &PyTuple_Type, &needles, &limit))
        return NULL;
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "find_needles: the text must be ASCII");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(needles);
    if (count > 64) {
        PyErr_SetString(PyExc_ValueError, "find_needles: at most 64 needles");
        return NULL;
    }
    const unsigned char *need[64];
    Py_ssize_t need_len[64];
    /* at[k][b]: the needles whose byte k is b (or that are k bytes long or shorter), as bit
     * sets: a position is a candidate for the needles in all three sets of its next bytes. */
    uint64_t at[3][256] = {{0}};
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PyTuple_GET_ITEM(needles, k);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) == 0) {
            PyErr_SetString(PyExc_TypeError, "find_needles: needles must be non-empty bytes");
            return NULL;
        }
        need[k] = (const unsigned char *)PyBytes_AS_STRING(item);
        need_len[k] = PyBytes_GET_SIZE(item);
        for (int d = 0; d < 3; d++) {
            if (d < need_len[k])
                at[d][need[k][d]] |= (uint64_t)1 << k;
            else
                for (int b = 0; b < 256; b++)
                    at[d][b] |= (uint64_t)1 << k;
        }
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (limit < n)
        n = limit;
    uint64_t found = 0, all = count == 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
    for (Py_ssize_t i = 0; i < n && found != all; i++) {
        uint64_t candidates = at[0][ascii_lower[p[i]]] & ~found;
        if (i + 2 < n)
            candidates &= at[1][ascii_lower[p[i + 1]]] & at[2][ascii_lower[p[i + 2]]];
        while (candidates) {
            int k = __builtin_ctzll(candidates);
            candidates &= candidates - 1;
            Py_ssize_t len = need_len[k], j = 1;
            if (i + len > n)
                continue;
            while (j < len && ascii_lower[p[i + j]] == need[k][j])
                j++;
            if (j == len)
                found |= (uint64_t)1 << k;
        }
    }
    return PyLong_FromUnsignedLongLong(found);
}

/* ---- code lines ------------------------------------------------------------------------- */

static unsigned char inline_space[256], strip_space[256];

PyDoc_STRVAR(code_line_stats_doc,
"code_line_stats(code) -> (lines, repeated)\n\n"
"Of the \\n-separated lines of UTF-8 code: how many str.strip() leaves non-empty, and how\n"
"many of those repeat another one once every whitespace character is removed (each\n"
"occurrence of a repeated key counts, the first too), keys of one character and the key\n"
"'},' aside (OpenCoder's duplicate-line definition).");

static PyObject *code_line_stats_of(const unsigned char *p, Py_ssize_t n)
{
    /* Keys are copied to `keys` back to back; the set holds (hash, offset, length, chars,
     * count) per key. */
    unsigned char *keys = malloc(n + 1);
    size_t cap = 16;
    while (cap < (size_t)n / 8 + 16)
        cap <<= 1;
    uint64_t *hashes = calloc(cap, sizeof(uint64_t));
    Py_ssize_t *offsets = malloc(cap * sizeof(Py_ssize_t));
    Py_ssize_t *lengths = malloc(cap * sizeof(Py_ssize_t));
    Py_ssize_t *chars_of = malloc(cap * sizeof(Py_ssize_t));
    Py_ssize_t *counts = malloc(cap * sizeof(Py_ssize_t));
    PyObject *result = NULL;
    if (keys == NULL || hashes == NULL || offsets == NULL || lengths == NULL ||
        chars_of == NULL || counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t lines = 0, distinct = 0, used = 0, i = 0;
    long work = 0;
    while (i <= n) {
        Py_ssize_t start = used, chars = 0;
        uint64_t h = 0xCBF29CE484222325ULL;
        while (i < n && p[i] != '\n') {
            unsigned char c = p[i++];
            if (c < 0x80) {
                if (!strip_space[c]) {
                    keys[used++] = c;
                    h = (h ^ c) * 0x100000001B3ULL;
                    chars++;
                }
                continue;
            }
            /* A UTF-8 sequence (surrogates too, as "surrogatepass" writes them): one
             * character, left out of the key when Unicode says it is a space. */
            int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
            Py_UCS4 cp = c & (c >= 0xF0 ? 0x07 : c >= 0xE0 ? 0x0F : 0x1F);
            Py_ssize_t at = used;
            uint64_t h0 = h;
            keys[used++] = c;
            h = (h ^ c) * 0x100000001B3ULL;
            for (int e = 0; e < extra && i < n && (p[i] & 0xC0) == 0x80; e++) {
                cp = (cp << 6) | (p[i] & 0x3F);
                keys[used++] = p[i];
                h = (h ^ p[i++]) * 0x100000001B3ULL;
            }
            if (Py_UNICODE_ISSPACE(cp)) {
                used = at;
                h = h0;
            }
            else
                chars++;
        }
        i++; /* past the break (or the end) */
        if (chars == 0) {
            used = start;
            continue;
        }
        lines++;
        Py_ssize_t len = used - start;
        if ((size_t)(distinct + 1) * 2 > cap) { /* grow: keep the load under one half */
            size_t grown = cap * 2;
            uint64_t *h2 = calloc(grown, sizeof(uint64_t));
            Py_ssize_t *o2 = malloc(grown * sizeof(Py_ssize_t));
            Py_ssize_t *l2 = malloc(grown * sizeof(Py_ssize_t));
            Py_ssize_t *k2 = malloc(grown * sizeof(Py_ssize_t));
            Py_ssize_t *c2 = malloc(grown * sizeof(Py_ssize_t));
            if (h2 == NULL || o2 == NULL || l2 == NULL || k2 == NULL || c2 == NULL) {
                free(h2);
                free(o2);
                free(l2);
                free(k2);
                free(c2);
                PyErr_NoMemory();
                goto done;
            }
            for (size_t s = 0; s < cap; s++) {
                if (!hashes[s])
                    continue;
                size_t t = mix64(hashes[s] ^ table_seed) & (grown - 1);
                while (h2[t])
                    t = (t + 1) & (grown - 1);
                h2[t] = hashes[s];
                o2[t] = offsets[s];
                l2[t] = lengths[s];
                k2[t] = chars_of[s];
                c2[t] = counts[s];
            }
            free(hashes);
            free(offsets);
            free(lengths);
            free(chars_of);
            free(counts);
            hashes = h2;
            offsets = o2;
            lengths = l2;
            chars_of = k2;
            counts = c2;
            cap = grown;
        }
        h |= 1; /* 0 marks an empty slot */
        size_t slot = mix64(h ^ table_seed) & (cap - 1);
        for (;;) {
            if (++work >= CHECK_EVERY) {
                work = 0;
                if (PyErr_CheckSignals() < 0)
                    goto done;
            }
            if (!hashes[slot]) {
                hashes[slot] = h;
                offsets[slot] = start;
                lengths[slot] = len;
                chars_of[slot] = chars;
                counts[slot] = 1;
                distinct++;
                break; /* a new key: its bytes stay in `keys` */
            }
            if (hashes[slot] == h && lengths[slot] == len &&
                memcmp(keys + offsets[slot], keys + start, len) == 0) {
                counts[slot]++;
                used = start; /* seen before: drop the copy */
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
    }
    Py_ssize_t repeated = 0;
    for (size_t s = 0; s < cap; s++) {
        if (!hashes[s] || counts[s] < 2 || chars_of[s] == 1)
            continue;
        if (lengths[s] == 2 && keys[offsets[s]] == '}' && keys[offsets[s] + 1] == ',')
            continue;
        repeated += counts[s];
    }
    result = Py_BuildValue("(nn)", lines, repeated);
done:
    free(keys);
    free(hashes);
    free(offsets);
    free(lengths);
    free(chars_of);
    free(counts);
    return result;
}

/* ---- MinHash word hashes ------------------------------------------------------------------ */

#define MH_R 0xD6E8FEB86659FD93ULL
#define MH_SHINGLE_MUL 0x9E3779B97F4A7C15ULL

PyDoc_STRVAR(minhash_words_doc,
"minhash_words(texts) -> (hashes, counts)\n\n"
"The 64-bit hash of every word of each UTF-8 text (a sequence of bytes objects), as\n"
"codekiln.stream.dedup.minhash.word_hashes defines it, and the number of words of each\n"
"text, as bytes of uint64 and int64.");

static PyObject *minhash_words(PyObject *self, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "minhash_words: expected a sequence of bytes");
    if (seq == NULL)
        return NULL;
    Py_ssize_t docs = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *hashes = NULL, *counts = NULL;
    Py_ssize_t cap = 0;
    for (Py_ssize_t d = 0; d < docs; d++) {
        if (!PyBytes_Check(items[d])) {
            PyErr_SetString(PyExc_TypeError, "minhash_words: every text must be bytes");
            goto fail;
        }
        cap += PyBytes_GET_SIZE(items[d]) / 2 + 1;
    }
    hashes = PyBytes_FromStringAndSize(NULL, cap * 8);
    counts = PyBytes_FromStringAndSize(NULL, docs * 8);
    if (hashes == NULL || counts == NULL)
        goto fail;
    uint64_t *h_out = (uint64_t *)PyBytes_AS_STRING(hashes);
    int64_t *c_out = (int64_t *)PyBytes_AS_STRING(counts);
    Py_ssize_t total = 0;
    for (Py_ssize_t d = 0; d < docs; d++) {
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(items[d]);
        Py_ssize_t n = PyBytes_GET_SIZE(items[d]), i = 0, words = 0;
        while (i < n) {
            if (!minhash_word[p[i]]) {
                i++;
                continue;
            }
            Py_ssize_t start = i;
            uint64_t h = 0, power = 1;
            while (i < n && minhash_word[p[i]]) {
                h += ((uint64_t)p[i] + 1) * power; /* sum((byte + 1) * R**k) mod 2**64 */
                power *= MH_R;
                i++;
            }
            h_out[total++] = mix64(h ^ ((uint64_t)(i - start) * MH_SHINGLE_MUL));
            words++;
        }
        c_out[d] = words;
    }
    Py_DECREF(seq);
    if (_PyBytes_Resize(&hashes, total * 8) < 0) {
        Py_DECREF(counts);
        return NULL;
    }
    return Py_BuildValue("(NN)", hashes, counts);
fail:
    Py_DECREF(seq);
    Py_XDECREF(hashes);
    Py_XDECREF(counts);
    return NULL;
}

BYTES_ENTRY(ascii_words)
BYTES_ENTRY(ascii_profile)
STR_ENTRY(str_tokens)
STR_ENTRY(str_classes)
BYTES_ENTRY(scan_python)
BYTES_ENTRY(code_line_stats)

static PyMethodDef methods[] = {
    {"ascii_words", ascii_words, METH_O, ascii_words_doc},
    {"ascii_profile", ascii_profile, METH_O, ascii_profile_doc},
    {"hex_runs", hex_runs, METH_VARARGS, hex_runs_doc},
    {"base64_runs", base64_runs, METH_VARARGS, base64_runs_doc},
    {"str_tokens", str_tokens, METH_O, str_tokens_doc},
    {"str_classes", str_classes, METH_O, str_classes_doc},
    {"ngram_signals", ngram_signals, METH_VARARGS, ngram_signals_doc},
    {"minhash_words", minhash_words, METH_O, minhash_words_doc},
    {"scan_python", scan_python, METH_O, scan_python_doc},
    {"code_line_stats", code_line_stats, METH_O, code_line_stats_doc},
    {"find_needles", find_needles, METH_VARARGS, find_needles_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "C loops of the heuristic filters and MinHash shingling (see each function).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    for (int c = 0; c < 256; c++) {
        int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        ascii_word[c] = word ? (unsigned char)((c >= 'A' && c <= 'Z') ? c | 0x20 : c) : 0;
        minhash_word[c] = word || c == '_' || c >= 0x80;
        alpha_byte[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        digit_byte[c] = c >= '0' && c <= '9';
        space_byte[c] = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == 0x0c;
        hex_digit_byte[c] = digit_byte[c] || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        hex_run_byte[c] = hex_digit_byte[c] || c == 'x' || c == 'X' || c == '\\' || c == ',' ||
                          space_byte[c] || (c >= 0x1c && c <= 0x1f);
        inline_space[c] = c == ' ' || c == '\t' || c == '\r' || c == 0x0b || c == 0x0c;
        strip_space[c] = inline_space[c] || c == '\n' || (c >= 0x1c && c <= 0x1f);
        ascii_lower[c] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : (unsigned char)c;
        py_special[c] = c == '#' || c == '\n' || c == '"' || c == '\'';
        base64_byte[c] = alpha_byte[c] || digit_byte[c] || c == '+' || c == '/' || c == '=' ||
                         c == '\n';
    }
    /* Unpredictable from outside the process: where this function lies (ASLR), the time and
     * the process id. Only the placement of keys in hash tables depends on it. */
    table_seed = mix64((uint64_t)(uintptr_t)&PyInit__native ^ ((uint64_t)time(NULL) << 20) ^
                       (uint64_t)getpid());
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", NATIVE_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
