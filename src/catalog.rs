//! Catalog look-ups shared by the launcher and the worker.

use pgrx::pg_sys;

/// The type's I/O function of kind `which` (`get_type_io_data`); `InvalidOid` when the type has
/// none of that kind (a type without a send function, for instance). Raises ERROR for a type
/// that does not exist.
pub fn io_function(type_oid: pg_sys::Oid, which: pg_sys::IOFuncSelector::Type) -> pg_sys::Oid {
    let (mut len, mut byval, mut align, mut delim) = (0i16, false, 0, 0);
    let mut ioparam = pg_sys::InvalidOid;
    let mut func = pg_sys::InvalidOid;
    // SAFETY: a catalog look-up; every output is a local.
    unsafe {
        pg_sys::get_type_io_data(
            type_oid,
            which,
            &mut len,
            &mut byval,
            &mut align,
            &mut delim,
            &mut ioparam,
            &mut func,
        )
    };
    func
}
