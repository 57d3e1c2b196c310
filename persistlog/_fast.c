// SPDX-License-Identifier: MIT
/*
 * persistlog._fast: Ring.append from Python objects to the committed record
 * in one call.
 *
 * The message, priority, identifier and fields of a record are encoded
 * into the msgpack map of docs/FORMAT.md ("Payload") with the writers of
 * _msgpack.h, which make the bytes msgpack.Packer(use_bin_type=True) makes
 * for the same dict, and handed to plr_appendv() as a gather list: small
 * items are packed into a buffer on the stack, long strings and byte
 * strings are read in place.  Nothing is allocated but the int returned
 * (and the UTF-8 form of a non-ASCII str, which CPython then keeps).
 *
 * Only common records take this path: a str or bytes message, an int
 * priority 0-7, a str identifier or None, and fields named by non-empty
 * str keys other than the three reserved names, whose values are str,
 * bytes, int (int64 or uint64 range), float, bool or None, of those exact
 * types.  For anything else append() returns None and the caller takes
 * the generic path (persistlog/record.py), which validates, raises
 * InvalidRecord with its messages, and encodes what msgpack encodes.
 *
 * emit() does the same for persistlog.Handler: from a logging.LogRecord to
 * the record Handler.emit() would append, with JournalHandler's fields,
 * for records of the exact LogRecord class whose message needs no
 * formatter, no traceback and no stack, and whose extra= values are str,
 * bytes, int or float under names the handler has judged before
 * (persistlog/handler.py, _kinds).  For the rest it declines, and the
 * handler's Python path, which makes the same bytes, takes the record.
 *
 * The C core is not linked in: the process holds one copy of it, in
 * persistlog._core (its thread-local lanes and its fork handling live
 * there).  The Python side passes the address of its plr_appendv() and of
 * the struct plr_ring when it makes an appender.
 *
 * Stable ABI: built with Py_LIMITED_API for 3.9, so one build serves every
 * CPython from 3.9 on (the wheel's cp39-abi3 tag).  Two things this file
 * uses entered the limited API only in 3.10, with the ABI they have had
 * since 3.7, which 3.9 exports and implements alike: METH_FASTCALL (the
 * arguments come as a C array, no tuple is built: about 30 ns a record
 * less than METH_VARARGS) and PyUnicode_AsUTF8AndSize() (the UTF-8 form of
 * a str without a copy; CPython keeps it beside the str).  They are
 * declared here when the headers hide them.  (The wheel built on 3.11 was
 * run under 3.9 and 3.13.)
 */
#define PY_SSIZE_T_CLEAN
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x03090000
#endif
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "_ring.h"
#include "_msgpack.h"

#if Py_LIMITED_API + 0 < 0x030A0000
#ifndef METH_FASTCALL
#define METH_FASTCALL 0x0080
#endif
PyAPI_FUNC(const char *) PyUnicode_AsUTF8AndSize(PyObject *unicode, Py_ssize_t *size);
#endif

/*
 * Headers and values of up to INLINE_MAX bytes are copied into a scratch
 * buffer; a longer string is its own plr_iov, read in place.  The scratch
 * holds no more than the payload, and a payload of at most SCRATCH_SIZE
 * bytes holds fewer than SCRATCH_SIZE / INLINE_MAX long strings, each
 * taking two plr_iov at most (the scratch bytes before it, then itself),
 * plus one for the scratch bytes after the last: so every record of the types
 * this path takes whose payload is at most SCRATCH_SIZE bytes fits, and
 * larger ones fit unless they overflow either (then the generic path
 * takes them).
 */
#define SCRATCH_SIZE	4096	/* bytes */
#define INLINE_MAX	256	/* bytes */
#define MAX_IOV		(2 * SCRATCH_SIZE / INLINE_MAX + 1)

typedef int64_t (*appendv_fn)(struct plr_ring *r, const struct plr_iov *iov, uint32_t n);

struct appender {
	PyObject_HEAD
	struct plr_ring *ring;	/* NULL once detached */
	appendv_fn appendv;
	PyObject *keep;		/* the owner of *ring (a cffi cdata) */
	PyObject *raise_rc;	/* raise_rc(rc, payload bytes): raises the error */
	PyObject *after;	/* called after each record, or NULL */
};

/* The payload being built: scratch bytes and the gather list over them. */
struct payload {
	struct plr_iov iov[MAX_IOV];
	uint32_t n;
	size_t start;		/* scratch bytes not yet in iov[] begin here */
	size_t used;
	size_t outside;		/* payload bytes read in place (in iov[], not scratch) */
	uint8_t scratch[SCRATCH_SIZE];
};

/*
 * Account for the @w bytes a _msgpack.h writer just stored in the scratch;
 * 0 if they did not fit (the writers store nothing then, and return 0).
 */
static inline int put(struct payload *p, size_t w)
{
	p->used += w;
	return w != 0;
}

/* Close the scratch bytes written since the last iov into one. */
static inline int flush(struct payload *p)
{
	if (p->used == p->start)
		return 1;
	if (p->n == MAX_IOV)
		return 0;
	p->iov[p->n].base = p->scratch + p->start;
	p->iov[p->n].len = p->used - p->start;
	p->n++;
	p->start = p->used;
	return 1;
}

/* A string's @len bytes at @s (its header already written): copied if short. */
static int put_bytes(struct payload *p, const char *s, size_t len)
{
	if (len <= INLINE_MAX) {
		if (SCRATCH_SIZE - p->used < len)
			return 0;
		memcpy(p->scratch + p->used, s, len);
		p->used += len;
		return 1;
	}
	if (!flush(p) || p->n == MAX_IOV)
		return 0;
	p->iov[p->n].base = s;
	p->iov[p->n].len = len;
	p->n++;
	p->outside += len;
	return 1;
}

static int put_str(struct payload *p, const char *s, Py_ssize_t len)
{
	if ((size_t)len > UINT32_MAX)
		return 0;
	return put(p, plm_str_hdr(p->scratch + p->used, SCRATCH_SIZE - p->used,
				  (uint32_t)len)) && put_bytes(p, s, (size_t)len);
}

/* An exact str as msgpack str; 0 for anything else (or unencodable text). */
static int put_unicode(struct payload *p, PyObject *o)
{
	Py_ssize_t len;
	const char *s;

	if (Py_TYPE(o) != &PyUnicode_Type)
		return 0;
	s = PyUnicode_AsUTF8AndSize(o, &len);
	if (!s) {		/* lone surrogates: msgpack's path raises */
		PyErr_Clear();
		return 0;
	}
	return put_str(p, s, len);
}

/*
 * One field value, as msgpack.Packer(use_bin_type=True) packs it: 0 when
 * its type is not one this path takes (the generic path decides then).
 */
static int put_value(struct payload *p, PyObject *v)
{
	uint8_t *dst = p->scratch + p->used;
	size_t cap = SCRATCH_SIZE - p->used;
	PyTypeObject *t = Py_TYPE(v);

	if (t == &PyUnicode_Type)
		return put_unicode(p, v);
	if (t == &PyLong_Type) {
		int overflow;
		long long x = PyLong_AsLongLongAndOverflow(v, &overflow);

		if (overflow > 0) {	/* uint64 range, or too big for msgpack */
			unsigned long long u = PyLong_AsUnsignedLongLong(v);

			if (u == (unsigned long long)-1 && PyErr_Occurred()) {
				PyErr_Clear();
				return 0;
			}
			return put(p, plm_uint(dst, cap, u));
		}
		if (overflow < 0)
			return 0;
		return put(p, plm_int(dst, cap, x));
	}
	if (v == Py_None)
		return put(p, plm_nil(dst, cap));
	if (v == Py_True || v == Py_False)
		return put(p, plm_bool(dst, cap, v == Py_True));
	if (t == &PyFloat_Type)
		return put(p, plm_f64(dst, cap, PyFloat_AsDouble(v)));
	if (t == &PyBytes_Type) {
		Py_ssize_t len = PyBytes_Size(v);

		if ((size_t)len > UINT32_MAX)
			return 0;
		return put(p, plm_bin_hdr(dst, cap, (uint32_t)len)) &&
		       put_bytes(p, PyBytes_AsString(v), (size_t)len);
	}
	return 0;
}

/* A field name this path takes: not empty, not one of the three reserved. */
static int name_ok(const char *s, Py_ssize_t len)
{
	switch (len) {
	case 0:
		return 0;
	case 7:
		return memcmp(s, "MESSAGE", 7) != 0;
	case 8:
		return memcmp(s, "PRIORITY", 8) != 0;
	case 17:
		return memcmp(s, "SYSLOG_IDENTIFIER", 17) != 0;
	}
	return 1;
}

/*
 * Encode the record into @p; 1 if done, 0 if it needs the generic path.
 * The map's entries come in the order of the generic path's dict: MESSAGE,
 * PRIORITY, SYSLOG_IDENTIFIER (if not None), then the fields in order.
 */
static int encode(struct payload *p, PyObject *message, PyObject *priority,
		  PyObject *identifier, PyObject *fields)
{
	Py_ssize_t nfields = 0, pos = 0;
	PyObject *k, *v;
	long prio;

	if (Py_TYPE(priority) != &PyLong_Type)
		return 0;
	prio = PyLong_AsLong(priority);
	if (prio < 0 || prio > 7) {
		PyErr_Clear();	/* out of range or overflow: the generic path raises */
		return 0;
	}
	if (identifier != Py_None && Py_TYPE(identifier) != &PyUnicode_Type)
		return 0;
	if (fields != Py_None) {
		if (Py_TYPE(fields) != &PyDict_Type)
			return 0;
		nfields = PyDict_Size(fields);
	}
	if (!put(p, plm_map(p->scratch, SCRATCH_SIZE, (uint32_t)(2 + (identifier != Py_None) +
								  nfields))))
		return 0;
	if (!put_str(p, "MESSAGE", 7))
		return 0;
	if (Py_TYPE(message) == &PyBytes_Type) {
		if (!put_value(p, message))
			return 0;
	} else if (!put_unicode(p, message)) {
		return 0;
	}
	if (!put_str(p, "PRIORITY", 8) ||
	    !put(p, plm_uint(p->scratch + p->used, SCRATCH_SIZE - p->used, (uint64_t)prio)))
		return 0;
	if (identifier != Py_None &&
	    (!put_str(p, "SYSLOG_IDENTIFIER", 17) || !put_unicode(p, identifier)))
		return 0;
	while (nfields && PyDict_Next(fields, &pos, &k, &v)) {
		Py_ssize_t len;
		const char *name;

		if (Py_TYPE(k) != &PyUnicode_Type)
			return 0;
		name = PyUnicode_AsUTF8AndSize(k, &len);
		if (!name) {
			PyErr_Clear();
			return 0;
		}
		if (!name_ok(name, len) || !put_str(p, name, len) || !put_value(p, v))
			return 0;
	}
	return flush(p);
}

/* After plr_appendv() returned @seq for @len payload bytes: the seq, or the error. */
static PyObject *appended(struct appender *a, int64_t seq, size_t len)
{
	if (seq < 0) {
		PyObject *r = PyObject_CallFunction(a->raise_rc, "Ln", (long long)seq,
						    (Py_ssize_t)len);

		if (r) {
			Py_DECREF(r);
			PyErr_Format(PyExc_SystemError, "plr_appendv: error %lld", (long long)seq);
		}
		return NULL;
	}
	if (a->after) {
		PyObject *r = PyObject_CallObject(a->after, NULL);

		if (!r)
			return NULL;
		Py_DECREF(r);
	}
	return PyLong_FromLongLong(seq);
}

PyDoc_STRVAR(append_doc,
"append(message, priority, identifier, fields) -> int | None\n\n"
"Encode a record (fields: a dict or None) and append it; return its seq.\n"
"Return None, having written nothing, when the record needs the generic\n"
"path (a type or value this one does not take), or the appender is\n"
"detached.  Errors of the ring (record too large, ...) are raised by the\n"
"raise_rc callable given to appender().");

static PyObject *appender_append(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct appender *a = (struct appender *)self;
	struct payload p;
	int64_t seq;

	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError, "append() takes 4 arguments");
		return NULL;
	}
	p.n = 0;
	p.start = p.used = p.outside = 0;
	if (!a->ring || !encode(&p, args[0], args[1], args[2], args[3]))
		Py_RETURN_NONE;
	seq = a->appendv(a->ring, p.iov, p.n);
	return appended(a, seq, p.used + p.outside);
}

PyDoc_STRVAR(append_bytes_doc,
"append_bytes(payload) -> int | None\n\n"
"Append a record of the payload given (bytes); return its seq.  Return None,\n"
"having written nothing, for another type or once detached.");

static PyObject *appender_append_bytes(PyObject *self, PyObject *payload)
{
	struct appender *a = (struct appender *)self;
	struct plr_iov iov;

	if (!a->ring || Py_TYPE(payload) != &PyBytes_Type)
		Py_RETURN_NONE;
	iov.base = PyBytes_AsString(payload);
	iov.len = (size_t)PyBytes_Size(payload);
	return appended(a, a->appendv(a->ring, &iov, 1), iov.len);
}

/*
 * What persistlog.handler gives configure_emit(): the LogRecord class,
 * handler._kinds (attribute name -> 0 not a field, 1 a field, 2 a field
 * the handler treats itself), the number of attributes LogRecord.__init__
 * sets (the extra= ones come after them in the record's __dict__), and
 * LEVEL_TO_PRIORITY.  Set once, at import of the handler, under the GIL.
 */
#define N_LEVELS	8
static PyObject *log_record_type;
static PyObject *log_kinds;
static Py_ssize_t log_n_init;
static long log_levels[N_LEVELS], log_priorities[N_LEVELS];
static int log_n_levels;
static PyObject *s_dict, *s_msg, *s_args, *s_levelno, *s_exc_info, *s_exc_text, *s_stack_info;

/* The record's own fields, in Handler.emit()'s order: name, attribute. */
static const char *const own_fields[][2] = {
	{ "LOGGER", "name" }, { "THREAD_NAME", "threadName" },
	{ "PROCESS_NAME", "processName" }, { "CODE_FILE", "pathname" },
	{ "CODE_LINE", "lineno" }, { "CODE_FUNC", "funcName" },
};
#define N_OWN	(sizeof(own_fields) / sizeof(own_fields[0]))
static PyObject *s_own[N_OWN];

/* handler.priority_for(): the first level at or above @levelno names it. */
static long level_priority(long levelno)
{
	int i;

	for (i = 0; i < log_n_levels; i++)
		if (levelno <= log_levels[i])
			return log_priorities[i];
	return 1;
}

/* Is d[@key] set to something true?  1 yes, 0 no (or absent), -1 error. */
static int dict_true(PyObject *d, PyObject *key)
{
	PyObject *v = PyDict_GetItemWithError(d, key);

	if (!v)
		return PyErr_Occurred() ? -1 : 0;
	if (v == Py_None || v == Py_False)
		return 0;
	return PyObject_IsTrue(v);
}

/* An extra= value stored as it is (handler._PLAIN): exactly str, bytes, int, float. */
static int plain(PyObject *v)
{
	PyTypeObject *t = Py_TYPE(v);

	return t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyLong_Type ||
	       t == &PyFloat_Type;
}

/*
 * The record's extra= fields, first pass: how many (>= 0), or -1 if one
 * needs the Python path (a name not judged yet, MESSAGE_ID or
 * SYSLOG_IDENTIFIER, a value to be turned into str).  With @p, encode them.
 */
static Py_ssize_t extras(PyObject *d, struct payload *p)
{
	Py_ssize_t pos = 0, i = 0, n = 0, len;
	PyObject *k, *v, *kind;
	const char *name;

	while (PyDict_Next(d, &pos, &k, &v)) {
		if (i++ < log_n_init)
			continue;
		kind = PyDict_GetItemWithError(log_kinds, k);
		if (!kind || Py_TYPE(kind) != &PyLong_Type) {
			PyErr_Clear();
			return -1;
		}
		switch (PyLong_AsLong(kind)) {
		case 0:
			continue;
		case 1:
			break;
		default:
			PyErr_Clear();
			return -1;
		}
		if (!plain(v) || Py_TYPE(k) != &PyUnicode_Type)
			return -1;
		n++;
		if (!p)
			continue;
		name = PyUnicode_AsUTF8AndSize(k, &len);
		if (!name) {
			PyErr_Clear();
			return -1;
		}
		if (!put_str(p, name, len) || !put_value(p, v))
			return -1;
	}
	return n;
}

/*
 * Encode what Handler.emit() appends for @d, a LogRecord's __dict__, into
 * @p: 1 done, 0 the Python path must take it.  *@message and *@code_args
 * get new references the payload may point into (NULL if none).
 */
static int encode_log(struct payload *p, PyObject *d, PyObject *identifier,
		      PyObject **message, PyObject **code_args)
{
	PyObject *msg, *args, *level, *v;
	Py_ssize_t n_extra;
	int has_args;
	long levelno;
	size_t i;

	if (dict_true(d, s_exc_info) || dict_true(d, s_exc_text) || dict_true(d, s_stack_info))
		return 0;	/* or an error, cleared by the caller */
	/* LogRecord.getMessage(): str(msg), then % args if there are any */
	msg = PyDict_GetItemWithError(d, s_msg);
	args = PyDict_GetItemWithError(d, s_args);
	level = PyDict_GetItemWithError(d, s_levelno);
	if (!msg || !args || !level || Py_TYPE(level) != &PyLong_Type)
		return 0;
	levelno = PyLong_AsLong(level);
	if (levelno == -1 && PyErr_Occurred())
		return 0;
	*message = PyObject_Str(msg);
	if (!*message)
		return 0;
	has_args = args != Py_None && PyObject_IsTrue(args);
	if (has_args < 0)
		return 0;
	if (has_args) {
		v = PyUnicode_Format(*message, args);
		Py_DECREF(*message);
		*message = v;
		*code_args = v ? PyObject_Str(args) : NULL;
		if (!*code_args)
			return 0;
	}
	n_extra = extras(d, NULL);
	if (n_extra < 0)
		return 0;
	if (!put(p, plm_map(p->scratch, SCRATCH_SIZE,
			    (uint32_t)(2 + (identifier != Py_None) + N_OWN + has_args + n_extra))) ||
	    !put_str(p, "MESSAGE", 7) || !put_unicode(p, *message) ||
	    !put_str(p, "PRIORITY", 8) ||
	    !put(p, plm_uint(p->scratch + p->used, SCRATCH_SIZE - p->used,
			     (uint64_t)level_priority(levelno))))
		return 0;
	if (identifier != Py_None &&
	    (!put_str(p, "SYSLOG_IDENTIFIER", 17) || !put_unicode(p, identifier)))
		return 0;
	for (i = 0; i < N_OWN; i++) {
		v = PyDict_GetItemWithError(d, s_own[i]);
		if (!v || !put_str(p, own_fields[i][0], (Py_ssize_t)strlen(own_fields[i][0])) ||
		    !put_value(p, v))
			return 0;
	}
	if (has_args && (!put_str(p, "CODE_ARGS", 9) || !put_unicode(p, *code_args)))
		return 0;
	return extras(d, p) == n_extra && flush(p);
}

PyDoc_STRVAR(emit_doc,
"emit(record, identifier) -> int | None\n\n"
"Append what persistlog.Handler.emit() appends for a logging.LogRecord with\n"
"no formatter (identifier: str or None); return its seq.  Return None,\n"
"having written nothing, when the handler's Python path must take it (see\n"
"persistlog/_fast.c), or the appender is detached.  Errors of the ring are\n"
"raised as for append().");

static PyObject *appender_emit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct appender *a = (struct appender *)self;
	PyObject *d, *message = NULL, *code_args = NULL, *ret;
	struct payload p;
	int ok;

	if (nargs != 2) {
		PyErr_SetString(PyExc_TypeError, "emit() takes 2 arguments");
		return NULL;
	}
	if (!a->ring || !log_record_type || (PyObject *)Py_TYPE(args[0]) != log_record_type ||
	    (args[1] != Py_None && Py_TYPE(args[1]) != &PyUnicode_Type))
		Py_RETURN_NONE;
	d = PyObject_GetAttr(args[0], s_dict);
	if (!d) {
		PyErr_Clear();
		Py_RETURN_NONE;
	}
	p.n = 0;
	p.start = p.used = p.outside = 0;
	ok = Py_TYPE(d) == &PyDict_Type && encode_log(&p, d, args[1], &message, &code_args);
	if (ok) {
		ret = appended(a, a->appendv(a->ring, p.iov, p.n), p.used + p.outside);
	} else {
		PyErr_Clear();	/* the Python path meets the same error and reports it */
		ret = Py_None;
		Py_INCREF(ret);
	}
	Py_XDECREF(message);
	Py_XDECREF(code_args);
	Py_DECREF(d);
	return ret;
}

static PyObject *appender_detach(PyObject *self, PyObject *unused)
{
	(void)unused;
	((struct appender *)self)->ring = NULL;
	Py_RETURN_NONE;
}

static void appender_dealloc(PyObject *self)
{
	struct appender *a = (struct appender *)self;
	PyTypeObject *type = Py_TYPE(self);
	freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);

	Py_XDECREF(a->keep);
	Py_XDECREF(a->raise_rc);
	Py_XDECREF(a->after);
	tp_free(self);
	Py_DECREF(type);
}

static PyMethodDef appender_methods[] = {
	{ "append", (PyCFunction)(void (*)(void))appender_append, METH_FASTCALL, append_doc },
	{ "append_bytes", appender_append_bytes, METH_O, append_bytes_doc },
	{ "emit", (PyCFunction)(void (*)(void))appender_emit, METH_FASTCALL, emit_doc },
	{ "detach", appender_detach, METH_NOARGS,
	  "detach()\n\nMake every later append() return None (the ring is closing)." },
	{ NULL, NULL, 0, NULL }
};

static PyType_Slot appender_slots[] = {
	{ Py_tp_dealloc, appender_dealloc },
	{ Py_tp_methods, appender_methods },
	{ Py_tp_doc, "One ring's fast append path; made by persistlog._fast.appender()." },
	{ 0, NULL }
};

static PyType_Spec appender_spec = {
	.name = "persistlog._fast.Appender",
	.basicsize = sizeof(struct appender),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = appender_slots,
};

static PyTypeObject *appender_type;

PyDoc_STRVAR(new_doc,
"appender(ring, keep, appendv, raise_rc, after) -> Appender\n\n"
"ring (int): address of the struct plr_ring to append to; keep: the object\n"
"that owns it, kept alive with the appender; appendv (int): address of\n"
"plr_appendv() in persistlog._core; raise_rc (callable): raise_rc(rc, n)\n"
"raises the error for plr_appendv's negative return rc (n: payload bytes);\n"
"after (callable | None): called with no arguments after each record.");

static PyObject *fast_appender(PyObject *module, PyObject *args)
{
	unsigned long long ring, fn;
	PyObject *keep, *raise_rc, *after;
	struct appender *a;

	(void)module;
	if (!PyArg_ParseTuple(args, "KOKOO", &ring, &keep, &fn, &raise_rc, &after))
		return NULL;
	if (!ring || !fn || !PyCallable_Check(raise_rc) ||
	    (after != Py_None && !PyCallable_Check(after))) {
		PyErr_SetString(PyExc_ValueError, "appender: null address or not callable");
		return NULL;
	}
	a = (struct appender *)PyType_GenericAlloc(appender_type, 0);
	if (!a)
		return NULL;
	a->ring = (struct plr_ring *)(uintptr_t)ring;
	a->appendv = (appendv_fn)(uintptr_t)fn;
	Py_INCREF(keep);
	a->keep = keep;
	Py_INCREF(raise_rc);
	a->raise_rc = raise_rc;
	if (after != Py_None) {
		Py_INCREF(after);
		a->after = after;
	}
	return (PyObject *)a;
}

PyDoc_STRVAR(configure_emit_doc,
"configure_emit(record_type, kinds, n_init, levels)\n\n"
"Called once by persistlog.handler: record_type is logging.LogRecord;\n"
"kinds (dict) maps attribute names to 0, 1 or 2 (handler._kind), and is\n"
"read at each emit(), so names added later count; n_init (int): the\n"
"attributes LogRecord.__init__ sets; levels: ((levelno, priority), ...),\n"
"ascending (handler.LEVEL_TO_PRIORITY).");

static PyObject *fast_configure_emit(PyObject *module, PyObject *args)
{
	PyObject *type, *kinds, *levels, *item;
	Py_ssize_t n_init, n, i;
	long lv[N_LEVELS], pr[N_LEVELS];

	(void)module;
	if (!PyArg_ParseTuple(args, "OO!nO!", &type, &PyDict_Type, &kinds, &n_init,
			      &PyTuple_Type, &levels))
		return NULL;
	n = PyTuple_Size(levels);
	if (n > N_LEVELS || n_init < 0) {
		PyErr_SetString(PyExc_ValueError, "configure_emit: too many levels");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		item = PyTuple_GetItem(levels, i);
		if (!item || !PyArg_ParseTuple(item, "ll", &lv[i], &pr[i]))
			return NULL;
	}
	Py_INCREF(type);
	Py_XDECREF(log_record_type);
	log_record_type = type;
	Py_INCREF(kinds);
	Py_XDECREF(log_kinds);
	log_kinds = kinds;
	log_n_init = n_init;
	memcpy(log_levels, lv, sizeof(lv));
	memcpy(log_priorities, pr, sizeof(pr));
	log_n_levels = (int)n;
	Py_RETURN_NONE;
}

static PyMethodDef fast_methods[] = {
	{ "appender", fast_appender, METH_VARARGS, new_doc },
	{ "configure_emit", fast_configure_emit, METH_VARARGS, configure_emit_doc },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef fast_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "persistlog._fast",
	.m_doc = "Ring.append from Python objects to the committed record in one call.",
	.m_size = -1,
	.m_methods = fast_methods,
};

PyMODINIT_FUNC PyInit__fast(void)
{
	PyObject *m;

	static const char *const names[] = { "__dict__", "msg", "args", "levelno", "exc_info",
					     "exc_text", "stack_info" };
	PyObject **const interned[] = { &s_dict, &s_msg, &s_args, &s_levelno, &s_exc_info,
					&s_exc_text, &s_stack_info };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!*interned[i] && !(*interned[i] = PyUnicode_InternFromString(names[i])))
			return NULL;
	for (i = 0; i < N_OWN; i++)
		if (!s_own[i] && !(s_own[i] = PyUnicode_InternFromString(own_fields[i][1])))
			return NULL;
	appender_type = (PyTypeObject *)PyType_FromSpec(&appender_spec);
	if (!appender_type)
		return NULL;
	m = PyModule_Create(&fast_module);
	if (!m)
		Py_CLEAR(appender_type);
	return m;
}
