//! The launcher's half of bound parameters: the `VARIADIC "any"` arguments of an autonomous call,
//! each turned into its type OID and its binary form (the type's send function) or, for types
//! without one, its text form — the two formats of a Bind message. A literal of unknown type
//! travels as text with type 0, for the worker's parser to infer, as an untyped Parse parameter.

use crate::error::Error;
use crate::params::{Encoder, Param, Value, MAX_PARAMS};
use pgrx::pg_sys;

/// The arguments of the call from position `first` on, encoded for the worker.
pub fn collect(fcinfo: pg_sys::FunctionCallInfo, first: usize) -> Result<Vec<u8>, Error> {
    let mut encoder = Encoder::new();
    // SAFETY: fcinfo is the live call info of the current call; argument i < nargs is read
    // with its type from the call expression; an explicit VARIADIC array is deconstructed with
    // its element type's storage properties.
    unsafe {
        let nargs = (*fcinfo).nargs as usize;
        let flinfo = (*fcinfo).flinfo;
        let args = (*fcinfo).args.as_slice(nargs);
        if nargs == first + 1 && pg_sys::get_fn_expr_variadic(flinfo) {
            // VARIADIC ARRAY[...]: the elements are the parameters; VARIADIC NULL is none.
            let arg = &args[first];
            if !arg.isnull {
                let array: *mut pg_sys::ArrayType =
                    pg_sys::pg_detoast_datum(arg.value.cast_mut_ptr()).cast();
                let elem_type = (*array).elemtype;
                let (mut len, mut byval, mut align) = (0i16, false, 0 as core::ffi::c_char);
                pg_sys::get_typlenbyvalalign(elem_type, &mut len, &mut byval, &mut align);
                let mut values: *mut pg_sys::Datum = core::ptr::null_mut();
                let mut nulls: *mut bool = core::ptr::null_mut();
                let mut n = 0;
                pg_sys::deconstruct_array(
                    array,
                    elem_type,
                    len.into(),
                    byval,
                    align,
                    &mut values,
                    &mut nulls,
                    &mut n,
                );
                for i in 0..n as usize {
                    push(&mut encoder, elem_type, *values.add(i), *nulls.add(i))?;
                }
            }
        } else {
            for (i, arg) in args.iter().enumerate().skip(first) {
                let type_oid = pg_sys::get_fn_expr_argtype(flinfo, i as i32);
                if type_oid == pg_sys::InvalidOid {
                    return Err(Error::ParamType(encoder.count() + 1));
                }
                push(&mut encoder, type_oid, arg.value, arg.isnull)?;
            }
        }
    }
    Ok(encoder.finish())
}

/// # Safety
/// `value` is a datum of type `type_oid` unless `isnull`.
unsafe fn push(
    encoder: &mut Encoder,
    type_oid: pg_sys::Oid,
    value: pg_sys::Datum,
    isnull: bool,
) -> Result<(), Error> {
    let n = encoder.count() + 1;
    if n > MAX_PARAMS {
        return Err(Error::TooManyParams(MAX_PARAMS));
    }
    if type_oid == pg_sys::RECORDOID {
        // An anonymous row's descriptor exists only in this backend's type cache.
        return Err(Error::AnonymousRecordParam(n));
    }
    if isnull {
        let type_oid = if type_oid == pg_sys::UNKNOWNOID {
            0
        } else {
            type_oid.to_u32()
        };
        encoder.push(Param {
            type_oid,
            value: Value::Null,
        });
        return Ok(());
    }
    // SAFETY: the caller's contract; output and send functions return palloc'd data in the
    // current memory context, copied by the encoder before this call ends.
    unsafe {
        if type_oid == pg_sys::UNKNOWNOID {
            // an untyped literal: a C string
            let text = core::ffi::CStr::from_ptr(value.cast_mut_ptr::<core::ffi::c_char>());
            encoder.push(Param {
                type_oid: 0,
                value: Value::Text(text.to_bytes()),
            });
            return Ok(());
        }
        let send = crate::catalog::io_function(type_oid, pg_sys::IOFuncSelector::IOFunc_send);
        if send != pg_sys::InvalidOid {
            let bytes = pg_sys::OidSendFunctionCall(send, value);
            let len = pgrx::varlena::varsize_any_exhdr(bytes);
            let data = core::slice::from_raw_parts(pgrx::varlena::vardata_any(bytes).cast(), len);
            encoder.push(Param {
                type_oid: type_oid.to_u32(),
                value: Value::Binary(data),
            });
        } else {
            let output =
                crate::catalog::io_function(type_oid, pg_sys::IOFuncSelector::IOFunc_output);
            let text = core::ffi::CStr::from_ptr(pg_sys::OidOutputFunctionCall(output, value));
            encoder.push(Param {
                type_oid: type_oid.to_u32(),
                value: Value::Text(text.to_bytes()),
            });
        }
    }
    Ok(())
}
