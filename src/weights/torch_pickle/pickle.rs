//! A restricted pickle virtual machine (the opcode set of Python's `pickle` protocols 2-5, as
//! documented in CPython's `pickletools`) for PyTorch state dicts: it builds plain values, dicts,
//! lists and tuples, and resolves only an allow-list of globals (OrderedDict, tensor rebuild
//! functions, storage types). Anything else is a ModelFormat error; no code is ever executed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::DType;
use crate::error::{Error, Result};

/// The globals a state dict may reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    /// `torch.FloatStorage` and friends, or `torch.UntypedStorage` (bytes).
    Storage(DType),
}

/// A storage named by a persistent id: `('storage', type, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub dtype: DType,
    pub key: String,
    pub numel: usize,
}

/// A tensor view on a storage (`torch._utils._rebuild_tensor_v2`).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

pub type Shared<T> = Rc<RefCell<T>>;

#[derive(Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Shared<Vec<Value>>),
    Dict(Shared<Vec<(Value, Value)>>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// Error messages show values this deep and this many items per container at most: a pickle can
/// nest values without end or make a list that contains itself.
const SHOW_DEPTH: usize = 3;
const SHOW_ITEMS: usize = 8;

impl Value {
    fn show(&self, f: &mut std::fmt::Formatter<'_>, depth: usize) -> std::fmt::Result {
        fn items<'a>(f: &mut std::fmt::Formatter<'_>, open: &str, close: &str, n: usize, it: impl Iterator<Item = (&'a Value, Option<&'a Value>)>, depth: usize) -> std::fmt::Result {
            f.write_str(open)?;
            for (i, (k, v)) in it.take(SHOW_ITEMS).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                k.show(f, depth + 1)?;
                if let Some(v) = v {
                    f.write_str(": ")?;
                    v.show(f, depth + 1)?;
                }
            }
            if n > SHOW_ITEMS {
                write!(f, ", ... {} more", n - SHOW_ITEMS)?;
            }
            f.write_str(close)
        }
        if depth > SHOW_DEPTH {
            return f.write_str("...");
        }
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(t) if t.chars().count() > 64 => write!(f, "{:?}...", t.chars().take(64).collect::<String>()),
            Value::Str(t) => write!(f, "{t:?}"),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::Tuple(t) => items(f, "(", ")", t.len(), t.iter().map(|v| (v, None)), depth),
            Value::List(l) => match l.try_borrow() {
                Ok(l) => items(f, "[", "]", l.len(), l.iter().map(|v| (v, None)), depth),
                Err(_) => f.write_str("[<in use>]"),
            },
            Value::Dict(d) => match d.try_borrow() {
                Ok(d) => items(f, "{", "}", d.len(), d.iter().map(|(k, v)| (k, Some(v))), depth),
                Err(_) => f.write_str("{<in use>}"),
            },
            Value::Global(g) => write!(f, "{g:?}"),
            Value::Storage(st) => write!(f, "{st:?}"),
            Value::Tensor(t) => write!(f, "{t:?}"),
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.show(f, 0)
    }
}

/// Every list and dict an unpickling built. Dropping it empties them all, which breaks the
/// reference cycles a pickle can make (a list appended to itself, a dict holding itself): with
/// reference counting alone those would never be freed.
#[derive(Default)]
struct Containers(Vec<Value>);

impl Containers {
    fn list(&mut self, items: Vec<Value>) -> Value {
        let v = Value::List(Rc::new(RefCell::new(items)));
        self.0.push(v.clone());
        v
    }
    fn dict(&mut self) -> Value {
        let v = Value::Dict(Rc::new(RefCell::new(Vec::new())));
        self.0.push(v.clone());
        v
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for v in &self.0 {
            match v {
                Value::List(l) => {
                    // Moved out first, so the items drop after the borrow ends.
                    let items = l.try_borrow_mut().map(|mut l| std::mem::take(&mut *l));
                    drop(items);
                }
                Value::Dict(d) => {
                    let items = d.try_borrow_mut().map(|mut d| std::mem::take(&mut *d));
                    drop(items);
                }
                _ => {}
            }
        }
    }
}

/// The value a pickle built. Its lists and dicts are emptied when it is dropped (see
/// [`Containers`]), so read what is needed while it lives.
pub struct Unpickled {
    pub root: Value,
    _containers: Containers,
}

impl std::fmt::Debug for Unpickled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.root.fmt(f)
    }
}

fn err(m: impl Into<String>) -> Error {
    Error::ModelFormat(m.into())
}

fn resolve_global(module: &str, name: &str) -> Result<Global> {
    let storage = |d| Ok(Global::Storage(d));
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", "FloatStorage") => storage(DType::F32),
        ("torch", "DoubleStorage") => storage(DType::F64),
        ("torch", "HalfStorage") => storage(DType::F16),
        ("torch", "BFloat16Storage") => storage(DType::BF16),
        ("torch", "LongStorage") => storage(DType::I64),
        ("torch", "IntStorage") => storage(DType::I32),
        ("torch", "ShortStorage") => storage(DType::I16),
        ("torch", "CharStorage") => storage(DType::I8),
        ("torch", "ByteStorage") => storage(DType::U8),
        ("torch", "BoolStorage") => storage(DType::Bool),
        ("torch", "UntypedStorage") | ("torch.storage", "UntypedStorage") => storage(DType::U8),
        _ => Err(err(format!(
            "the checkpoint references `{module}.{name}`, which a state-dict reader does not execute \
             (only tensors, dicts, lists and plain values are read)"
        ))),
    }
}

enum Item {
    Mark,
    V(Value),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| err("pickle data ends early"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| err("pickle text line without newline"))?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| err("pickle text line is not UTF-8"))
    }
    fn utf8(&mut self, n: usize) -> Result<String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| err("pickle string is not UTF-8"))
    }
}

fn as_usize(v: &Value, what: &str) -> Result<usize> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        other => Err(err(format!("{what}: expected a non-negative int, got {other:?}"))),
    }
}

fn int_tuple(v: &Value, what: &str) -> Result<Vec<usize>> {
    match v {
        Value::Tuple(t) => t.iter().map(|x| as_usize(x, what)).collect(),
        Value::List(l) => l.borrow().iter().map(|x| as_usize(x, what)).collect(),
        other => Err(err(format!("{what}: expected a tuple of ints, got {other:?}"))),
    }
}

fn call(func: Global, args: Value, containers: &mut Containers) -> Result<Value> {
    let args: Vec<Value> = match args {
        Value::Tuple(t) => t.as_ref().clone(),
        other => return Err(err(format!("REDUCE arguments are not a tuple: {other:?}"))),
    };
    match func {
        Global::OrderedDict => {
            if !args.is_empty() {
                return Err(err("OrderedDict called with arguments"));
            }
            Ok(containers.dict())
        }
        Global::RebuildTensorV2 => {
            if args.len() < 4 {
                return Err(err(format!("_rebuild_tensor_v2 with {} arguments", args.len())));
            }
            let Value::Storage(storage) = &args[0] else {
                return Err(err(format!("_rebuild_tensor_v2 on a non-storage {:?}", args[0])));
            };
            let shape = int_tuple(&args[2], "tensor size")?;
            let stride = int_tuple(&args[3], "tensor stride")?;
            if shape.len() != stride.len() {
                return Err(err(format!(
                    "tensor size {shape:?} and stride {stride:?} differ in rank"
                )));
            }
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: as_usize(&args[1], "storage offset")?,
                shape,
                stride,
            }))
        }
        Global::RebuildParameter => match args.first() {
            Some(t @ Value::Tensor(_)) => Ok(t.clone()),
            other => Err(err(format!("_rebuild_parameter on {other:?}"))),
        },
        Global::Storage(_) => Err(err("a storage type was called directly")),
    }
}

fn persistent_load(pid: Value) -> Result<Value> {
    let Value::Tuple(t) = pid else {
        return Err(err(format!("persistent id is not a tuple: {pid:?}")));
    };
    match t.as_slice() {
        [Value::Str(kind), Value::Global(Global::Storage(dtype)), key, _location, numel] if kind == "storage" => {
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                other => return Err(err(format!("storage key {other:?}"))),
            };
            Ok(Value::Storage(StorageRef {
                dtype: *dtype,
                key,
                numel: as_usize(numel, "storage size")?,
            }))
        }
        other => Err(err(format!("unsupported persistent id {other:?}"))),
    }
}

/// Run the pickle program in `data` and return the value it builds.
pub fn unpickle(data: &[u8]) -> Result<Unpickled> {
    let mut containers = Containers::default();
    let mut r = Reader { data, pos: 0 };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();

    fn pop(stack: &mut Vec<Item>) -> Result<Value> {
        match stack.pop() {
            Some(Item::V(v)) => Ok(v),
            Some(Item::Mark) => Err(err("pickle: unexpected MARK on the stack")),
            None => Err(err("pickle: stack underflow")),
        }
    }
    fn pop_mark(stack: &mut Vec<Item>) -> Result<Vec<Value>> {
        let at = stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| err("pickle: no MARK"))?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items
            .into_iter()
            .filter_map(|i| if let Item::V(v) = i { Some(v) } else { None })
            .collect())
    }
    fn top(stack: &mut [Item]) -> Result<&mut Value> {
        match stack.last_mut() {
            Some(Item::V(v)) => Ok(v),
            _ => Err(err("pickle: empty stack")),
        }
    }
    fn set_items(target: &Value, kv: Vec<Value>) -> Result<()> {
        let Value::Dict(d) = target else {
            return Err(err(format!("SETITEM(S) on a non-dict {target:?}")));
        };
        if !kv.len().is_multiple_of(2) {
            return Err(err("SETITEMS with an odd number of values"));
        }
        let mut d = d.borrow_mut();
        let mut it = kv.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }
    fn append(target: &Value, vs: Vec<Value>) -> Result<()> {
        let Value::List(l) = target else {
            return Err(err(format!("APPEND(S) on a non-list {target:?}")));
        };
        l.borrow_mut().extend(vs);
        Ok(())
    }
    let tuple = |v: Vec<Value>| Value::Tuple(Rc::new(v));

    loop {
        let op = r.u8()?;
        match op {
            0x80 => {
                let proto = r.u8()?;
                if proto > 5 {
                    return Err(err(format!("pickle protocol {proto} is not supported")));
                }
            }
            0x95 => {
                r.u64()?; // FRAME: the length is only a hint
            }
            b'.' => {
                let root = pop(&mut stack)?;
                return Ok(Unpickled { root, _containers: containers });
            }
            b'(' => stack.push(Item::Mark),
            b'N' => stack.push(Item::V(Value::None)),
            0x88 => stack.push(Item::V(Value::Bool(true))),
            0x89 => stack.push(Item::V(Value::Bool(false))),
            b'J' => stack.push(Item::V(Value::Int(r.u32()? as i32 as i64))),
            b'K' => stack.push(Item::V(Value::Int(r.u8()? as i64))),
            b'M' => stack.push(Item::V(Value::Int(r.u16()? as i64))),
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    r.u8()? as usize
                } else {
                    r.u32()? as usize
                };
                let b = r.take(n)?;
                if n > 8 {
                    return Err(err(format!("pickle integer of {n} bytes is too large")));
                }
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= (byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n); // two's complement sign
                }
                stack.push(Item::V(Value::Int(v)));
            }
            b'I' => {
                let l = r.line()?;
                let v = match l {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    s => Value::Int(s.parse().map_err(|_| err(format!("bad INT {s:?}")))?),
                };
                stack.push(Item::V(v));
            }
            b'G' => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                stack.push(Item::V(Value::Float(f64::from_be_bytes(a))));
            }
            b'X' => {
                let n = r.u32()? as usize;
                stack.push(Item::V(Value::Str(r.utf8(n)?)));
            }
            0x8c => {
                let n = r.u8()? as usize;
                stack.push(Item::V(Value::Str(r.utf8(n)?)));
            }
            0x8d => {
                let n = r.u64()? as usize;
                stack.push(Item::V(Value::Str(r.utf8(n)?)));
            }
            b'T' | b'U' | b'B' | b'C' | 0x8e => {
                let n = match op {
                    b'T' | b'B' => r.u32()? as usize,
                    0x8e => r.u64()? as usize,
                    _ => r.u8()? as usize,
                };
                let b = r.take(n)?.to_vec();
                // BINSTRING/SHORT_BINSTRING are Python 2 str: keep them as text when they are UTF-8.
                let v = if matches!(op, b'T' | b'U') {
                    String::from_utf8(b.clone()).map(Value::Str).unwrap_or(Value::Bytes(b))
                } else {
                    Value::Bytes(b)
                };
                stack.push(Item::V(v));
            }
            b')' => stack.push(Item::V(tuple(Vec::new()))),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(pop(&mut stack)?);
                }
                v.reverse();
                stack.push(Item::V(tuple(v)));
            }
            b't' => {
                let v = pop_mark(&mut stack)?;
                stack.push(Item::V(tuple(v)));
            }
            b']' => stack.push(Item::V(containers.list(Vec::new()))),
            b'l' => {
                let v = pop_mark(&mut stack)?;
                stack.push(Item::V(containers.list(v)));
            }
            b'}' => stack.push(Item::V(containers.dict())),
            b'd' => {
                let kv = pop_mark(&mut stack)?;
                let d = containers.dict();
                set_items(&d, kv)?;
                stack.push(Item::V(d));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                append(top(&mut stack)?, vec![v])?;
            }
            b'e' => {
                let vs = pop_mark(&mut stack)?;
                append(top(&mut stack)?, vs)?;
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                set_items(top(&mut stack)?, vec![k, v])?;
            }
            b'u' => {
                let kv = pop_mark(&mut stack)?;
                set_items(top(&mut stack)?, kv)?;
            }
            b'c' => {
                let module = r.line()?.to_string();
                let name = r.line()?.to_string();
                stack.push(Item::V(Value::Global(resolve_global(&module, &name)?)));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => stack.push(Item::V(Value::Global(resolve_global(&m, &n)?))),
                    (m, n) => return Err(err(format!("STACK_GLOBAL with {m:?}, {n:?}"))),
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(Item::V(persistent_load(pid)?));
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let func = pop(&mut stack)?;
                let Value::Global(g) = func else {
                    return Err(err(format!("REDUCE on a non-callable {func:?}")));
                };
                stack.push(Item::V(call(g, args, &mut containers)?));
            }
            b'b' => {
                // BUILD: the state of an OrderedDict is its attributes (e.g. `_metadata`), not items;
                // a tensor's state is unused here. Both are dropped.
                let _state = pop(&mut stack)?;
                match top(&mut stack)? {
                    Value::Dict(_) | Value::Tensor(_) => {}
                    other => return Err(err(format!("BUILD on an unsupported object {other:?}"))),
                }
            }
            b'q' => {
                let i = r.u8()? as u32;
                memo.insert(i, top(&mut stack)?.clone());
            }
            b'r' => {
                let i = r.u32()?;
                memo.insert(i, top(&mut stack)?.clone());
            }
            0x94 => {
                let i = memo.len() as u32;
                memo.insert(i, top(&mut stack)?.clone());
            }
            b'h' | b'j' => {
                let i = if op == b'h' { r.u8()? as u32 } else { r.u32()? };
                let v = memo
                    .get(&i)
                    .ok_or_else(|| err(format!("pickle memo {i} is empty")))?
                    .clone();
                stack.push(Item::V(v));
            }
            b'0' => {
                stack.pop().ok_or_else(|| err("POP on an empty stack"))?;
            }
            b'1' => {
                pop_mark(&mut stack)?;
            }
            b'2' => {
                let v = top(&mut stack)?.clone();
                stack.push(Item::V(v));
            }
            other => {
                return Err(err(format!(
                    "pickle opcode 0x{other:02x} at byte {} is not supported by the state-dict reader",
                    r.pos - 1
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_programs() {
        // {'a': 1, 'b': [True, None, -2], 'c': (3.5,)} pickled by CPython with protocol 2.
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(\x88NJ\xfe\xff\xff\xffeX\x01\x00\x00\x00cq\x04G@\x0c\x00\x00\x00\x00\x00\x00\x85q\x05u.";
        let u = unpickle(p).unwrap();
        let Value::Dict(d) = &u.root else { panic!() };
        let d = d.borrow();
        assert_eq!(d.len(), 3);
        assert!(matches!(&d[0], (Value::Str(k), Value::Int(1)) if k == "a"));
        let Value::List(l) = &d[1].1 else { panic!() };
        assert!(matches!(
            l.borrow().as_slice(),
            [Value::Bool(true), Value::None, Value::Int(-2)]
        ));
        let Value::Tuple(t) = &d[2].1 else { panic!() };
        assert!(matches!(t.as_slice(), [Value::Float(f)] if *f == 3.5));
    }

    #[test]
    fn unknown_global_is_refused() {
        let p = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
        let e = unpickle(p).unwrap_err();
        assert_eq!(e.code(), crate::Code::ModelFormat);
        assert!(e.to_string().contains("os.system"), "{e}");
    }

    /// Found by the `weights` fuzz target (a leak under LeakSanitizer): a list appended to itself
    /// is a reference cycle, freed once the result is dropped; printing a self-referencing value
    /// in an error message stays bounded (it recursed without end before).
    #[test]
    fn self_referencing_containers_are_freed() {
        // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: `l = []; l.append(l)`.
        let u = unpickle(b"\x80\x02]q\x00h\x00a.").unwrap();
        let Value::List(l) = &u.root else { panic!() };
        let weak = Rc::downgrade(l);
        assert_eq!(format!("{u:?}"), "[[[[...]]]]", "Debug of a cycle is bounded");
        drop(u);
        assert!(weak.upgrade().is_none(), "the self-referencing list leaked");
        // A dict holding itself as a key and a value, shown in an error message, stays bounded.
        let p = b"\x80\x02}q\x00h\x00h\x00h\x00sq\x01h\x00\x85R.";
        let msg = unpickle(p).unwrap_err().to_string();
        assert!(msg.contains("non-callable") && msg.len() < 400, "{msg}");
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(unpickle(b"\x80\x02}q\x00(X\x05\x00\x00\x00ab").is_err());
        assert!(unpickle(b"").is_err());
    }
}
