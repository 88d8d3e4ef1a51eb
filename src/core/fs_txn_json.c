/*
 * fs_txn_json: the JSON `data` object of a transactions message <-> a transaction record.
 */
#include "fs_txn_json.h"
#include "fs_err.h"
#include "fs_txn_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

int fs_txn_from_json(fs_txn *t, const json_t *data, char *errstr, size_t errstr_size)
{
    char why[256];
    fs_txni_init(t);
    if (!json_is_object(data)) {
        fs_errf(errstr, errstr_size, "data: expected an object, got %s",
             data ? json_type_name(data) : "nothing");
        return -1;
    }
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        const json_t *v = json_object_get(data, fs_txni_field_names[f]);
        int rc = 0;
        if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            double x = NAN;
            if (v == NULL || json_is_null(v))
                x = NAN;
            else if (json_is_integer(v))
                x = (double)json_integer_value(v);
            else if (json_is_real(v))
                x = json_real_value(v);
            else if (json_is_string(v))
                rc = fs_parse_number(json_string_value(v), json_string_length(v), &x, why,
                                     sizeof why);
            else {
                snprintf(why, sizeof why, "expected a number or a numeric string, got %s",
                         json_type_name(v));
                rc = -1;
            }
            if (rc == 0)
                rc = fs_txni_set_number(t, (enum fs_txn_field)f, x, why, sizeof why);
        } else {
            if (v == NULL || json_is_null(v))
                rc = fs_txni_set_string(t, (enum fs_txn_field)f, "", 0, why, sizeof why);
            else if (json_is_string(v))
                rc = fs_txni_set_string(t, (enum fs_txn_field)f, json_string_value(v),
                                json_string_length(v), why, sizeof why);
            else {
                snprintf(why, sizeof why, "expected a string, got %s", json_type_name(v));
                rc = -1;
            }
        }
        if (rc != 0) {
            fs_errf(errstr, errstr_size, "data.%s: %s", fs_txni_field_names[f], why);
            return -1;
        }
    }
    const json_t *target = json_object_get(data, "target");
    if (target != NULL && !json_is_null(target)) {
        json_int_t tv = -1;
        if (json_is_integer(target))
            tv = json_integer_value(target);
        else if (json_is_string(target) && json_string_length(target) == 1)
            tv = json_string_value(target)[0] - '0';
        if (tv != 0 && tv != 1) {
            fs_errf(errstr, errstr_size, "data.target: expected 0 or 1");
            return -1;
        }
        t->target = (int)tv;
    }
    return 0;
}

/* Integral values that are exactly representable go out as JSON integers (post codes
 * read better that way), everything else as reals; NaN as null. */
static json_t *number_json(double v, int prefer_int)
{
    if (isnan(v))
        return json_null();
    if (prefer_int && v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *fs_txn_to_json(const fs_txn *t)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        json_t *v;
        if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            double x = *fs_txni_number_slot((fs_txn *)t, (enum fs_txn_field)f);
            v = number_json(x, f == FS_F_POST_CODE || f == FS_F_POPULATION_CITY);
        } else {
            const char *s = *fs_txni_string_slot((fs_txn *)t, (enum fs_txn_field)f);
            v = json_stringn(s, strlen(s));
        }
        if (v == NULL || json_object_set_new(o, fs_txni_field_names[f], v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}
