//! SFTP and SMB as object stores: `fs` implements object_store's `ObjectStore` once over a small
//! remote-file-tree trait (stat, list, read a range, create, mkdir, rename over, remove), with
//! writes to a temp name renamed into place when complete (`upload` holds the multipart side);
//! `sftp` (with `ssh`: connection, authentication, host-key pinning) and `smb` implement that
//! trait; `config` turns their URLs and options into stores.

mod config;
mod fs;
mod sftp;
mod smb;
mod ssh;
mod upload;

pub use config::{sftp as sftp_store, smb as smb_store};
pub use fs::RemoteFsError;
