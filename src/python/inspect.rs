//! Looking inside backups for Python: `list_members` and `diff_backups`, each with an async twin.
//! The work is `crate::archive::inspect`'s; members arrive as dicts that `habackup.BackupMember`
//! wraps (names that are not UTF-8 decoded as Python decodes file names).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::runtime::awaitable::future_into_py;
use super::runtime::blocking::{run_cancellable, run_interruptible};
use super::runtime::cancel::{token, CancelToken};
use crate::archive::{self, ArchiveDiff, MemberInfo, MemberKind};

fn member_dict<'py>(py: Python<'py>, member: &MemberInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", OsStr::from_bytes(&member.path))?;
    let kind = match member.kind {
        MemberKind::File => "file",
        MemberKind::Directory => "directory",
        MemberKind::Symlink => "symlink",
        MemberKind::HardLink => "hardlink",
    };
    d.set_item("type", kind)?;
    d.set_item("size", member.size)?;
    d.set_item("mtime", member.mtime)?;
    d.set_item("mode", member.mode)?;
    d.set_item("link", member.link.as_deref().map(OsStr::from_bytes))?;
    Ok(d)
}

fn members_list(members: Vec<MemberInfo>) -> PyResult<Py<PyAny>> {
    Python::attach(|py| {
        let list = PyList::empty(py);
        for member in &members {
            list.append(member_dict(py, member)?)?;
        }
        Ok(list.into_any().unbind())
    })
}

fn diff_dict(diff: ArchiveDiff) -> PyResult<Py<PyAny>> {
    Python::attach(|py| {
        let d = PyDict::new(py);
        let listed = |members: &[MemberInfo]| -> PyResult<Bound<'_, PyList>> {
            let list = PyList::empty(py);
            for member in members {
                list.append(member_dict(py, member)?)?;
            }
            Ok(list)
        };
        d.set_item("added", listed(&diff.added)?)?;
        d.set_item("removed", listed(&diff.removed)?)?;
        let changed = PyList::empty(py);
        for (before, after) in &diff.changed {
            let pair = [member_dict(py, before)?, member_dict(py, after)?];
            changed.append(PyTuple::new(py, pair)?)?;
        }
        d.set_item("changed", changed)?;
        Ok(d.into_any().unbind())
    })
}

#[pyfunction]
#[pyo3(signature = (path, *, password=None))]
pub fn list_members(
    py: Python<'_>,
    path: PathBuf,
    password: Option<String>,
) -> PyResult<Py<PyAny>> {
    let members = run_interruptible(py, move |cancel| {
        archive::list_members(&path, password.as_deref(), &cancel)
    })?;
    members_list(members)
}

#[pyfunction]
#[pyo3(signature = (path, *, password=None, cancel=None))]
pub fn list_members_async<'py>(
    py: Python<'py>,
    path: PathBuf,
    password: Option<String>,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cancel = token(cancel);
    future_into_py(py, async move {
        let members = run_cancellable(&cancel, move |cancel| {
            archive::list_members(&path, password.as_deref(), &cancel)
        })
        .await?;
        members_list(members)
    })
}

#[pyfunction]
#[pyo3(signature = (a, b, *, password=None, password_b=None))]
pub fn diff_backups(
    py: Python<'_>,
    a: PathBuf,
    b: PathBuf,
    password: Option<String>,
    password_b: Option<String>,
) -> PyResult<Py<PyAny>> {
    let password_b = password_b.or_else(|| password.clone());
    let diff = run_interruptible(py, move |cancel| {
        archive::diff_archives(&a, &b, password.as_deref(), password_b.as_deref(), &cancel)
    })?;
    diff_dict(diff)
}

#[pyfunction]
#[pyo3(signature = (a, b, *, password=None, password_b=None, cancel=None))]
pub fn diff_backups_async<'py>(
    py: Python<'py>,
    a: PathBuf,
    b: PathBuf,
    password: Option<String>,
    password_b: Option<String>,
    cancel: Option<PyRef<'py, CancelToken>>,
) -> PyResult<Bound<'py, PyAny>> {
    let password_b = password_b.or_else(|| password.clone());
    let cancel = token(cancel);
    future_into_py(py, async move {
        let diff = run_cancellable(&cancel, move |cancel| {
            archive::diff_archives(&a, &b, password.as_deref(), password_b.as_deref(), &cancel)
        })
        .await?;
        diff_dict(diff)
    })
}
