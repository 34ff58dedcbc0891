//! `pg_background_result`: a job's output as `SETOF record`, typed by the caller's column
//! definition list; `pg_background_result_json`: the same rows as `SETOF jsonb`, one object per
//! row, which needs no column definition list.
//!
//! Materialize mode, chosen deliberately: one call drains the queue and puts each row into a
//! tuplestore, which spills to a temporary file past `work_mem`, so the launcher's memory is
//! bounded by the queue plus `work_mem`, never by the size of the result. Value-per-call would
//! not stream to the caller anyway — in FROM, `ExecMakeTableFunctionResult` (execSRF.c) stores
//! the rows in a tuplestore too — and materializing keeps all Rust state on this call's stack,
//! where `Drop` runs even when an ERROR unwinds it.

use super::relay;
use super::session_jobs;
use crate::error::{Error, MAX_COLUMNS};
use crate::protocol::{BackendMessage, FieldDescription, TUPLE_ALIGN};
use crate::server::{ContextSize, ContextSwitch, MemoryContext};
use pgrx::pg_sys;
use pgrx::warning;

/// What the caller asked the rows to become.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Typed by the caller's column definition list (`SETOF record`).
    Typed,
    /// One jsonb object per row (`SETOF jsonb`).
    Json,
}

/// Where the rows go: the caller's descriptor and the tuplestore handed back to the executor.
pub(super) struct Target {
    desc: pg_sys::TupleDesc,
    store: *mut pg_sys::Tuplestorestate,
    shape: Shape,
}

impl Target {
    /// Check the call shape (a set-returning call; for `Typed`, in FROM with a column
    /// definition list) and set up materialize mode. Runs before the results are consumed, so
    /// a wrong call loses nothing.
    pub(super) fn for_call(fcinfo: pg_sys::FunctionCallInfo, shape: Shape) -> Result<Self, Error> {
        // SAFETY: fcinfo is the live call info pgrx passed us; resultinfo is checked for its
        // node tag before use; allocations go to the query's memory, which outlives the scan.
        unsafe {
            let rsinfo = (*fcinfo).resultinfo.cast::<pg_sys::ReturnSetInfo>();
            if rsinfo.is_null() || (*rsinfo).type_ != pg_sys::NodeTag::T_ReturnSetInfo {
                return Err(Error::SetContext);
            }
            let mut desc: pg_sys::TupleDesc = core::ptr::null_mut();
            if shape == Shape::Typed {
                let class = pg_sys::get_call_result_type(fcinfo, core::ptr::null_mut(), &mut desc);
                if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || desc.is_null() {
                    return Err(Error::RecordContext);
                }
            }
            if (*rsinfo).allowedModes & pg_sys::SetFunctionReturnMode::SFRM_Materialize as i32 == 0
            {
                return Err(Error::SetContext);
            }
            let random = (*rsinfo).allowedModes
                & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Random as i32
                != 0;
            let per_query = (*(*rsinfo).econtext).ecxt_per_query_memory;
            let switch = ContextSwitch::to(per_query);
            let desc = if shape == Shape::Typed {
                pg_sys::CreateTupleDescCopy(desc)
            } else {
                let one = pg_sys::CreateTemplateTupleDesc(1);
                pg_sys::TupleDescInitEntry(one, 1, c"".as_ptr(), pg_sys::JSONBOID, -1, 0);
                one
            };
            let store = pg_sys::tuplestore_begin_heap(random, false, pg_sys::work_mem);
            drop(switch);
            (*rsinfo).returnMode = pg_sys::SetFunctionReturnMode::SFRM_Materialize;
            (*rsinfo).setResult = store;
            (*rsinfo).setDesc = desc;
            Ok(Self { desc, store, shape })
        }
    }

    /// [`Target::for_call`] for a typed result.
    pub(super) fn from_call(fcinfo: pg_sys::FunctionCallInfo) -> Result<Self, Error> {
        Self::for_call(fcinfo, Shape::Typed)
    }

    pub(super) fn natts(&self) -> usize {
        // SAFETY: a live descriptor in query memory.
        unsafe { (*self.desc).natts as usize }
    }

    pub(super) fn attr(&self, i: usize) -> &pg_sys::FormData_pg_attribute {
        // SAFETY: callers pass i < natts; the descriptor outlives self.
        unsafe { &*crate::server::tuple_desc_attr(self.desc, i) }
    }
}

impl Target {
    /// Whether the declared columns have exactly these types.
    pub(super) fn has_types(&self, types: &[pg_sys::Oid]) -> bool {
        self.natts() == types.len()
            && types
                .iter()
                .enumerate()
                .all(|(i, t)| self.attr(i).atttypid == *t)
    }

    /// Append one row (the tuplestore copies it).
    pub(super) fn put(&self, values: &mut [pg_sys::Datum], nulls: &mut [bool]) {
        debug_assert_eq!(values.len(), self.natts());
        // SAFETY: values and nulls have one entry per column of the descriptor, of its types
        // (callers check the descriptor first: has_types, describe, or a single text column).
        unsafe {
            pg_sys::tuplestore_putvalues(
                self.store,
                self.desc,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            )
        };
    }
}

/// How one column's bytes become a Datum.
struct Column {
    finfo: pg_sys::FmgrInfo,
    ioparam: pg_sys::Oid,
    typmod: i32,
    /// From the worker's value to the caller's.
    convert: Convert,
}

impl Column {
    /// A value from its binary form: the receive function with the declared typmod, which must
    /// consume every byte (else `BinaryFormat(number)`, the column's number).
    ///
    /// # Safety
    /// In the row's memory context; `scratch` is this reader's, reused for every field.
    unsafe fn receive(
        &mut self,
        bytes: &[u8],
        scratch: &mut Vec<u8>,
        number: usize,
    ) -> Result<pg_sys::Datum, Error> {
        // (a NUL-terminated copy: receive functions may expect the terminator, and the queue's
        // bytes are shared and must not be written)
        scratch.clear();
        scratch.extend_from_slice(bytes);
        scratch.push(0);
        let mut buf = pg_sys::StringInfoData {
            data: scratch.as_mut_ptr().cast(),
            len: bytes.len() as i32,
            maxlen: scratch.len() as i32,
            cursor: 0,
        };
        // SAFETY: the caller's contract; `buf` covers `scratch`, which outlives the call.
        let value = unsafe {
            pg_sys::ReceiveFunctionCall(&mut self.finfo, &mut buf, self.ioparam, self.typmod)
        };
        if buf.cursor != buf.len {
            return Err(Error::BinaryFormat(number));
        }
        Ok(value)
    }
}

impl Column {
    /// The caller's column `attr` for the worker's `field`, with the 1.x rules: a binary
    /// column's type must be exactly the declared type (no casts); a text column must be
    /// declared text.
    fn matching(
        field: &FieldDescription<'_>,
        attr: &pg_sys::FormData_pg_attribute,
    ) -> Result<Self, Error> {
        let binary = field.format == 1;
        if binary && pg_sys::Oid::from(field.type_oid) != attr.atttypid {
            return Err(Error::RowtypeMismatch {
                use_text: false,
                detail: None,
            });
        }
        if !binary && attr.atttypid != pg_sys::TEXTOID {
            return Err(Error::RowtypeMismatch {
                use_text: true,
                detail: None,
            });
        }
        let mut func = pg_sys::Oid::INVALID;
        let mut ioparam = pg_sys::Oid::INVALID;
        let mut finfo = pg_sys::FmgrInfo::default();
        let worker_type = pg_sys::Oid::from(field.type_oid);
        // SAFETY: catalog look-ups of an existing type; raise core's "no binary input
        // function available for type" (or output) when there is none. FmgrInfo state goes
        // to the per-call context, which outlives the read.
        let convert = unsafe {
            if binary {
                pg_sys::getTypeBinaryInputInfo(attr.atttypid, &mut func, &mut ioparam);
            } else {
                pg_sys::getTypeInputInfo(attr.atttypid, &mut func, &mut ioparam);
            }
            pg_sys::fmgr_info_cxt(func, &mut finfo, pg_sys::CurrentMemoryContext);
            let output = |binary_form: bool| {
                let (mut out, mut varlena) = (pg_sys::Oid::INVALID, false);
                if binary_form {
                    pg_sys::getTypeBinaryOutputInfo(worker_type, &mut out, &mut varlena);
                } else {
                    pg_sys::getTypeOutputInfo(worker_type, &mut out, &mut varlena);
                }
                let mut out_finfo = pg_sys::FmgrInfo::default();
                pg_sys::fmgr_info_cxt(out, &mut out_finfo, pg_sys::CurrentMemoryContext);
                out_finfo
            };
            if !binary {
                Convert::Output(output(false))
            } else if worker_type == pg_sys::RECORDOID || worker_type == pg_sys::RECORDARRAYOID {
                Convert::Anonymous
            } else if attr.atttypmod < 0 || attr.atttypmod == field.type_modifier {
                Convert::Same
            } else {
                Convert::Resend(output(true))
            }
        };
        Ok(Column {
            finfo,
            ioparam,
            typmod: attr.atttypmod,
            convert,
        })
    }
}

/// How a value of the worker's tuple becomes the caller's, with the outcome the 1.x rules give
/// its text or binary field (see `Reader::describe`).
enum Convert {
    /// Same type, and no other typmod to apply: the value as it is.
    Same,
    /// Same type, another typmod: through the type's send and receive functions, as a binary
    /// field would be (numeric rounded, 22001 for a varchar too long).
    Resend(pg_sys::FmgrInfo),
    /// A type without a send function, declared text: through its output function.
    Output(pg_sys::FmgrInfo),
    /// An anonymous record (or an array of them): its row type exists only in the worker, so a
    /// value cannot be read (0A000, as `record_recv` says for a binary field).
    Anonymous,
}

/// A standalone tuple slot; dropped with `ExecDropSingleTupleTableSlot`.
struct Slot(*mut pg_sys::TupleTableSlot);

impl Slot {
    /// # Safety
    /// `desc` outlives the slot.
    unsafe fn minimal(desc: pg_sys::TupleDesc) -> Self {
        // SAFETY: the caller's contract; allocated in the current (per-call) context.
        Self(unsafe { pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple) })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: we own the slot; it holds no tuple of its own (stored with shouldFree false).
        unsafe { pg_sys::ExecDropSingleTupleTableSlot(self.0) };
    }
}

/// Slots for rows that come as tuples: one of the worker's row type (from the RowDescription),
/// one of the caller's.
struct TupleSlots {
    worker: Slot,
    target: Slot,
    /// Every column is `Convert::Same`: the worker's tuple is stored as it is.
    as_is: bool,
}

enum Flow {
    More,
    Done,
}

struct Reader {
    pid: i32,
    target: Target,
    /// For a typed result: set by the RowDescription.
    columns: Option<Vec<Column>>,
    /// For a jsonb result: set by the RowDescription.
    json: Option<JsonRows>,
    /// Set with `columns`.
    slots: Option<TupleSlots>,
    /// A MAXALIGNed copy of a batch of tuples that is not aligned where it lies (a message kept
    /// in session memory).
    aligned: Vec<u64>,
    tags: Vec<Vec<u8>>,
    /// Reset after each row.
    row: MemoryContext,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    /// NUL-terminated copy of the field being converted (receive and input functions may
    /// expect the terminator; the queue's bytes are shared and must not be written).
    scratch: Vec<u8>,
}

/// Read all of `pid`'s output into the caller's result set.
pub fn read(
    pid: i32,
    cookie: session_jobs::Cookie,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), Error> {
    read_as(pid, cookie, fcinfo, Shape::Typed)
}

/// [`read`], in the shape asked for.
pub fn read_as(
    pid: i32,
    cookie: session_jobs::Cookie,
    fcinfo: pg_sys::FunctionCallInfo,
    shape: Shape,
) -> Result<(), Error> {
    session_jobs::check(pid, cookie)?;
    if session_jobs::with_entry(pid, |e| e.results_disabled)? {
        return Err(Error::ResultsDisabled(pid));
    }
    let target = Target::for_call(fcinfo, shape)?;
    read_into(pid, target)
}

/// Consume the result of `pid` (already checked) into `target`.
pub(super) fn read_into(pid: i32, target: Target) -> Result<(), Error> {
    // From here on the results are consumed: an error drops the entry (and detaches).
    let mut entry = session_jobs::take(pid)?;
    consume(pid, target, &mut FromEntry(&mut entry, pid))?;
    drop(entry);
    Ok(())
}

/// Where a reader's messages come from.
trait Source {
    fn next_message(&mut self) -> Result<&[u8], Error>;
}

/// The job of this session (and its worker's PID).
struct FromEntry<'e>(&'e mut session_jobs::Entry, i32);

impl Source for FromEntry<'_> {
    fn next_message(&mut self) -> Result<&[u8], Error> {
        next_message(self.0, self.1)
    }
}

/// A kept result: its end before ReadyForQuery is the error the job ended with (recorded in the
/// registry; a worker that could not connect sent nothing), else a lost connection.
impl Source for crate::spill::reader::Kept {
    fn next_message(&mut self) -> Result<&[u8], Error> {
        if self.advance() {
            return Ok(self.message());
        }
        let pid = self.worker_pid();
        if let Some((sqlstate, message)) = self.error().cloned() {
            let fields = [message, String::new(), String::new(), String::new()];
            super::relay::raise_fields(&sqlstate, &fields, pid);
        }
        Err(Error::LostConnection(pid))
    }
}

/// Consume the messages `next` gives (those of worker `pid`) into `target`, up to the
/// ReadyForQuery.
fn consume(pid: i32, target: Target, source: &mut impl Source) -> Result<(), Error> {
    let natts = target.natts();
    let mut reader = Reader {
        pid,
        target,
        columns: None,
        json: None,
        slots: None,
        aligned: Vec::new(),
        tags: Vec::new(),
        row: MemoryContext::under_current(c"pg_background row", ContextSize::Default),
        values: vec![pg_sys::Datum::from(0); natts],
        nulls: vec![false; natts],
        scratch: Vec::new(),
    };
    while let Flow::More = reader.handle(source.next_message()?)? {}
    reader.finish()
}

/// `pg_background_job_result(job_id bigint)`: the result of a job of this session, or the kept
/// result of a job whose launching session has ended (waiting for the job to finish), read
/// once.
pub fn read_job(job_id: i64, fcinfo: pg_sys::FunctionCallInfo, shape: Shape) -> Result<(), Error> {
    let id = u64::try_from(job_id).map_err(|_| Error::NoSuchJob(job_id))?;
    if let Some(pid) = session_jobs::pid_of_job(id) {
        return read_as(pid, session_jobs::Cookie::Ignore, fcinfo, shape);
    }
    let target = Target::for_call(fcinfo, shape)?;
    let claimed = loop {
        use crate::registry::NotKept;
        crate::registry::prepare_to_wait();
        match crate::registry::claim(id) {
            Ok(claimed) => break claimed,
            // Woken when a kept result is complete; interruptible; and, as for a job of this
            // session, an error (40P01) if the job waits for a lock this session holds.
            Err(NotKept::Pending(worker)) => {
                let mut waiter = super::deadlock::Waiter::new(worker);
                if let Err(e) = waiter.wait(crate::server::WaitEvent::Job) {
                    crate::registry::stop_sleeping();
                    return Err(e);
                }
            }
            Err(e) => {
                crate::registry::stop_sleeping();
                return Err(match e {
                    NotKept::Denied => Error::JobPermissionDenied(job_id),
                    NotKept::Unknown => Error::NoSuchJob(job_id),
                    _ => Error::ResultNotKept(job_id),
                });
            }
        }
    };
    crate::registry::stop_sleeping();
    let mut kept = crate::spill::reader::Kept::new(claimed, id);
    let pid = kept.worker_pid();
    consume(pid, target, &mut kept)
}

/// What every reader does with the messages besides rows and command tags: relay errors and
/// notices, refuse the COPY sub-protocol, stop at ReadyForQuery, warn of unknown ones.
fn control(message: BackendMessage<'_>, pid: i32) -> Result<Flow, Error> {
    match message {
        BackendMessage::ErrorResponse(body) | BackendMessage::NoticeResponse(body) => {
            relay::relay(body, pid)?
        }
        BackendMessage::CopyInResponse
        | BackendMessage::CopyOutResponse
        | BackendMessage::CopyBothResponse => return Err(Error::CopyProtocol),
        BackendMessage::ReadyForQuery(_) => return Ok(Flow::Done),
        BackendMessage::Unknown { tag, len } => {
            warning!("unknown message type: {} ({} bytes)", tag as char, len)
        }
        BackendMessage::RowDescription(_)
        | BackendMessage::Tuples(_)
        | BackendMessage::CommandComplete(_)
        | BackendMessage::EmptyQueryResponse
        | BackendMessage::ParameterStatus(..)
        | BackendMessage::NotificationResponse { .. } => {}
    }
    Ok(Flow::More)
}

/// The next message of the job; the worker gone before ReadyForQuery is a lost connection.
fn next_message(entry: &mut session_jobs::Entry, pid: i32) -> Result<&[u8], Error> {
    entry.channel.receive(pid, entry.worker.handle())
}

/// Consume the output of `pid` (already checked), discarding rows, relaying notices and
/// errors; returns the last statement's command tag (empty for an empty string).
pub(super) fn command_tag(pid: i32) -> Result<String, Error> {
    let mut entry = session_jobs::take(pid)?;
    let mut tag = Vec::new();
    loop {
        let flow = match BackendMessage::decode(next_message(&mut entry, pid)?)? {
            BackendMessage::CommandComplete(t) => {
                tag = t.to_vec();
                Flow::More
            }
            // rows are not wanted here
            BackendMessage::RowDescription(_) | BackendMessage::Tuples(_) => Flow::More,
            other => control(other, pid)?,
        };
        if let Flow::Done = flow {
            break;
        }
    }
    drop(entry);
    Ok(String::from_utf8_lossy(&tag).into_owned())
}

impl Reader {
    fn handle(&mut self, message: &[u8]) -> Result<Flow, Error> {
        match BackendMessage::decode(message)? {
            BackendMessage::RowDescription(fields) => self.describe(&fields)?,
            BackendMessage::Tuples(tuples) => self.store_tuples(tuples)?,
            BackendMessage::CommandComplete(tag) => {
                if self.columns.is_none() && self.json.is_none() {
                    self.tags.push(tag.to_vec());
                }
            }
            other => return control(other, self.pid),
        }
        Ok(Flow::More)
    }

    /// Match the worker's columns against the caller's, with the 1.x rules: a binary column's
    /// type must be exactly the declared type (no casts); a text column must be declared text.
    fn describe(&mut self, fields: &[FieldDescription<'_>]) -> Result<(), Error> {
        if self.columns.is_some() || self.json.is_some() {
            return Err(Error::MultipleRowDescriptions);
        }
        if fields.len() > MAX_COLUMNS {
            return Err(Error::BadColumnCount(fields.len()));
        }
        if self.target.shape == Shape::Json {
            self.json = Some(JsonRows::describe(fields));
            self.tags.clear();
            return Ok(());
        }
        if fields.len() != self.target.natts() {
            return Err(self.mismatch(fields, false));
        }
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, field)| Column::matching(field, self.target.attr(i)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| match e {
                Error::RowtypeMismatch { use_text, .. } => self.mismatch(fields, use_text),
                e => e,
            })?;
        // SAFETY: a template descriptor of the worker's column types, in the per-call context
        // (as the slots, which it outlives); TupleDescInitEntry looks each type up.
        let slots = unsafe {
            let worker_desc = pg_sys::CreateTemplateTupleDesc(fields.len() as i32);
            for (i, field) in fields.iter().enumerate() {
                pg_sys::TupleDescInitEntry(
                    worker_desc,
                    (i + 1) as pg_sys::AttrNumber,
                    c"".as_ptr(),
                    pg_sys::Oid::from(field.type_oid),
                    field.type_modifier,
                    0,
                );
            }
            TupleSlots {
                worker: Slot::minimal(worker_desc),
                target: Slot::minimal(self.target.desc),
                as_is: columns.iter().all(|c| matches!(c.convert, Convert::Same)),
            }
        };
        self.columns = Some(columns);
        self.slots = Some(slots);
        self.tags.clear();
        Ok(())
    }

    /// The rows do not fit the column definition list: say what the job returned and what was
    /// asked.
    fn mismatch(&self, fields: &[FieldDescription<'_>], use_text: bool) -> Error {
        let returned: Vec<String> = fields
            .iter()
            .map(|f| type_name(pg_sys::Oid::from(f.type_oid), f.type_modifier))
            .collect();
        let asked: Vec<String> = (0..self.target.natts())
            .map(|i| {
                let attr = self.target.attr(i);
                type_name(attr.atttypid, attr.atttypmod)
            })
            .collect();
        let text_column = fields.iter().position(|f| f.format == 0);
        let detail = match text_column {
            Some(i) if use_text => format!(
                "Column {} of the job's rows, of type {}, comes in text form (the type has no binary form); the column definition list declares it {}.",
                i + 1,
                returned[i],
                asked[i]
            ),
            _ => format!(
                "The job returned {}; the column definition list has {}.",
                listed(&returned),
                listed(&asked)
            ),
        };
        Error::RowtypeMismatch {
            use_text,
            detail: Some(detail),
        }
    }

    /// A batch of rows as the worker's MinimalTuples (validated by the decoder), read in place
    /// when the batch is MAXALIGNed as the queue's messages are, else from an aligned copy (a
    /// message kept in session memory).
    fn store_tuples(&mut self, batch: &[u8]) -> Result<(), Error> {
        if (batch.as_ptr() as usize).is_multiple_of(TUPLE_ALIGN) {
            return self.store_aligned(batch);
        }
        let mut aligned = std::mem::take(&mut self.aligned);
        aligned.clear();
        aligned.resize(batch.len().div_ceil(core::mem::size_of::<u64>()), 0);
        // SAFETY: `aligned` has room for the batch's bytes; the slice over them lives while
        // `aligned` does, here.
        let copy = unsafe {
            core::ptr::copy_nonoverlapping(
                batch.as_ptr(),
                aligned.as_mut_ptr().cast::<u8>(),
                batch.len(),
            );
            core::slice::from_raw_parts(aligned.as_ptr().cast::<u8>(), batch.len())
        };
        let outcome = self.store_aligned(copy);
        self.aligned = aligned;
        outcome
    }

    fn store_aligned(&mut self, batch: &[u8]) -> Result<(), Error> {
        for tuple in crate::protocol::tuples(batch) {
            self.store_tuple(tuple?)?;
        }
        Ok(())
    }

    /// One row as the worker's MinimalTuple, at a MAXALIGN boundary: stored as it is when the
    /// types are the caller's, else converted column by column.
    fn store_tuple(&mut self, tuple: &[u8]) -> Result<(), Error> {
        if let Some(json) = self.json.as_ref() {
            return json.store(tuple, &self.target, &self.row);
        }
        let (Some(columns), Some(slots)) = (self.columns.as_mut(), self.slots.as_ref()) else {
            return Err(Error::RowsWithoutDescription);
        };
        let natts = columns.len();
        let minimal = tuple.as_ptr().cast_mut().cast::<pg_sys::MinimalTupleData>();
        // SAFETY: the decoder checked that the tuple is as long as its t_len says, and the
        // worker formed it with the row type of its RowDescription, which `describe` matched
        // against the caller's: a tuple of the worker type (and, when `as_is`, of the caller's
        // too: the same types have the same physical layout). The slots hold it without owning
        // it, only until it is stored; conversions allocate in the row context, reset after.
        unsafe {
            let tuple_natts = ((*minimal).t_infomask2 & pg_sys::HEAP_NATTS_MASK as u16) as usize;
            if tuple_natts != natts {
                return Err(Error::Malformed(crate::protocol::DecodeError::BadLength {
                    message: 'M',
                    value: tuple_natts as i64,
                }));
            }
            if slots.as_is {
                let slot = slots.target.0;
                pg_sys::ExecStoreMinimalTuple(minimal, slot, false);
                pg_sys::tuplestore_puttupleslot(self.target.store, slot);
                pg_sys::ExecClearTuple(slot);
                return Ok(());
            }
            let switch = ContextSwitch::to(self.row.as_ptr());
            let slot = slots.worker.0;
            pg_sys::ExecStoreMinimalTuple(minimal, slot, false);
            if natts > 0 {
                pg_sys::slot_getsomeattrs_int(slot, natts as i32);
            }
            let mut outcome = Ok(());
            for (i, column) in columns.iter_mut().enumerate() {
                let null = *(*slot).tts_isnull.add(i);
                let value = *(*slot).tts_values.add(i);
                self.nulls[i] = null;
                if null {
                    self.values[i] = pg_sys::Datum::from(0);
                    continue;
                }
                self.values[i] = match &mut column.convert {
                    Convert::Same => value,
                    Convert::Anonymous => {
                        outcome = Err(Error::AnonymousRecordValue);
                        break;
                    }
                    Convert::Output(out) => pg_sys::InputFunctionCall(
                        &mut column.finfo,
                        pg_sys::OutputFunctionCall(out, value),
                        column.ioparam,
                        column.typmod,
                    ),
                    Convert::Resend(send) => {
                        let bytes = pg_sys::SendFunctionCall(send, value);
                        let bytes = pgrx::varlena::varlena_to_byte_slice(bytes);
                        match column.receive(bytes, &mut self.scratch, i + 1) {
                            Ok(value) => value,
                            Err(e) => {
                                outcome = Err(e);
                                break;
                            }
                        }
                    }
                };
            }
            if outcome.is_ok() {
                self.target.put(&mut self.values, &mut self.nulls);
            }
            pg_sys::ExecClearTuple(slot);
            drop(switch);
            self.row.reset();
            outcome
        }
    }

    /// After ReadyForQuery: with no RowDescription, the result is one text row per command tag.
    /// As jsonb, `{"command_tag": "..."}` per command.
    fn finish(&mut self) -> Result<(), Error> {
        if self.columns.is_some() || self.json.is_some() {
            return Ok(());
        }
        let json = self.target.shape == Shape::Json;
        if !json && (self.target.natts() != 1 || self.target.attr(0).atttypid != pg_sys::TEXTOID) {
            return Err(Error::NoResultSet);
        }
        for tag in &self.tags {
            // SAFETY: the datum is copied by the tuplestore; the row context is reset.
            unsafe {
                let switch = ContextSwitch::to(self.row.as_ptr());
                let value = if json {
                    let tag = String::from_utf8_lossy(tag);
                    let object = serde_json::json!({ "command_tag": tag }).to_string();
                    jsonb_from_text(&object)
                } else {
                    pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
                        tag.as_ptr().cast(),
                        tag.len() as i32,
                    ))
                };
                self.target.put(&mut [value], &mut [false]);
                drop(switch);
                self.row.reset();
            }
        }
        Ok(())
    }
}

/// The rows of a jsonb result: the worker's row type, with the column names made unique.
struct JsonRows {
    /// A slot of the worker's (blessed) row type.
    worker: Slot,
    natts: usize,
    /// Columns of anonymous record types, whose values cannot be read here.
    anonymous: Vec<usize>,
}

/// The names of `fields`, a later duplicate of a name getting `_2`, `_3`, … (the first free
/// one), so that no value is lost to a duplicate key.
fn unique_names(fields: &[FieldDescription<'_>]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    let mut names = Vec::with_capacity(fields.len());
    for field in fields {
        let name = String::from_utf8_lossy(field.name).into_owned();
        let mut unique = name.clone();
        let mut n = 2;
        while taken.contains(&unique) {
            unique = format!("{name}_{n}");
            n += 1;
        }
        taken.insert(unique.clone());
        names.push(unique);
    }
    names
}

impl JsonRows {
    fn describe(fields: &[FieldDescription<'_>]) -> Self {
        let names = unique_names(fields);
        // SAFETY: a template descriptor of the worker's column types, in the per-call context
        // (as the slot, which it outlives); blessed so that a row of it is a datum that
        // row_to_json can look its type up from.
        let worker = unsafe {
            let desc = pg_sys::CreateTemplateTupleDesc(fields.len() as i32);
            for (i, field) in fields.iter().enumerate() {
                let name = std::ffi::CString::new(names[i].replace('\0', "")).unwrap_or_default();
                pg_sys::TupleDescInitEntry(
                    desc,
                    (i + 1) as pg_sys::AttrNumber,
                    name.as_ptr(),
                    pg_sys::Oid::from(field.type_oid),
                    field.type_modifier,
                    0,
                );
            }
            Slot::minimal(pg_sys::BlessTupleDesc(desc))
        };
        let anonymous = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                let t = pg_sys::Oid::from(f.type_oid);
                t == pg_sys::RECORDOID || t == pg_sys::RECORDARRAYOID
            })
            .map(|(i, _)| i)
            .collect();
        Self {
            worker,
            natts: fields.len(),
            anonymous,
        }
    }

    /// One row as the worker's MinimalTuple, at a MAXALIGN boundary: as a jsonb object.
    fn store(&self, tuple: &[u8], target: &Target, row: &MemoryContext) -> Result<(), Error> {
        let minimal = tuple.as_ptr().cast_mut().cast::<pg_sys::MinimalTupleData>();
        // SAFETY: the decoder checked the tuple's length, and the worker formed it with the row
        // type of its RowDescription, the slot's; the slot holds it without owning it until the
        // object is stored; allocations go to the row context, reset after.
        unsafe {
            let tuple_natts = ((*minimal).t_infomask2 & pg_sys::HEAP_NATTS_MASK as u16) as usize;
            if tuple_natts != self.natts {
                return Err(Error::Malformed(crate::protocol::DecodeError::BadLength {
                    message: 'M',
                    value: tuple_natts as i64,
                }));
            }
            let switch = ContextSwitch::to(row.as_ptr());
            let slot = self.worker.0;
            pg_sys::ExecStoreMinimalTuple(minimal, slot, false);
            if self.natts > 0 {
                pg_sys::slot_getsomeattrs_int(slot, self.natts as i32);
            }
            let readable = self.anonymous.iter().all(|&i| *(*slot).tts_isnull.add(i));
            if readable {
                let record = pg_sys::ExecFetchSlotHeapTupleDatum(slot);
                let json = pg_sys::DirectFunctionCall1Coll(
                    Some(crate::ffi::row_to_json),
                    pg_sys::InvalidOid,
                    record,
                );
                let text = pg_sys::text_to_cstring(json.cast_mut_ptr());
                let jsonb = pg_sys::DirectFunctionCall1Coll(
                    Some(crate::ffi::jsonb_in),
                    pg_sys::InvalidOid,
                    pg_sys::Datum::from(text),
                );
                target.put(&mut [jsonb], &mut [false]);
            }
            pg_sys::ExecClearTuple(slot);
            drop(switch);
            row.reset();
            if readable {
                Ok(())
            } else {
                Err(Error::AnonymousRecordValue)
            }
        }
    }
}

/// A jsonb datum from JSON text, in the current memory context.
///
/// # Safety
/// In a transaction; `text` is valid JSON without NUL bytes.
unsafe fn jsonb_from_text(text: &str) -> pg_sys::Datum {
    let text = std::ffi::CString::new(text).unwrap_or_default();
    // SAFETY: the caller's contract; jsonb_in copies what it parses.
    unsafe {
        pg_sys::DirectFunctionCall1Coll(
            Some(crate::ffi::jsonb_in),
            pg_sys::InvalidOid,
            pg_sys::Datum::from(text.as_ptr()),
        )
    }
}

/// `2 columns (integer, text)`, `1 column (integer)`, `no columns`.
fn listed(types: &[String]) -> String {
    match types.len() {
        0 => "no columns".to_owned(),
        1 => format!("1 column ({})", types[0]),
        n => format!("{n} columns ({})", types.join(", ")),
    }
}

/// A type's name as SQL spells it, with its modifier (`character varying(3)`).
fn type_name(oid: pg_sys::Oid, typmod: i32) -> String {
    // SAFETY: a catalog look-up; format_type_extended with FORMAT_TYPE_ALLOW_INVALID names an
    // unknown OID "???" instead of raising; the palloc'd result is copied.
    unsafe {
        let name = pg_sys::format_type_extended(
            oid,
            typmod,
            pg_sys::FORMAT_TYPE_TYPEMOD_GIVEN as u16 | pg_sys::FORMAT_TYPE_ALLOW_INVALID as u16,
        );
        core::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}
