//! Deletes: the sidecar first, so a half-finished delete leaves a .tar that still lists (from its
//! backup.json) rather than a sidecar pointing at nothing.

use object_store::ObjectStoreExt;

use super::error::StoreError;
use super::{check_slug, StoreAgent};

impl StoreAgent {
    pub(super) async fn delete_object(&self, name: &str) -> Result<(), StoreError> {
        match self.store().delete(&self.key(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(StoreError::from_remote(&self.describe(name), &err)),
        }
    }

    /// Deletes backup `slug`; `NotFound` when neither its .tar nor its sidecar exists.
    pub async fn delete(&self, slug: &str) -> Result<(), StoreError> {
        check_slug(slug)?;
        let tar = Self::tar_name(slug);
        let sidecar = Self::sidecar_name(slug);
        let (has_tar, has_sidecar) = tokio::try_join!(self.exists(&tar), self.exists(&sidecar))?;
        if !has_tar && !has_sidecar {
            return Err(StoreError::NotFound(format!(
                "backup {slug} not found at {}",
                self.display_url()
            )));
        }
        if has_sidecar {
            self.delete_object(&sidecar).await?;
        }
        if has_tar {
            self.delete_object(&tar).await?;
        }
        Ok(())
    }

    /// Best-effort removal of a .tar whose upload did not finish cleanly.
    pub(super) async fn remove_quietly(&self, name: &str) {
        let removal = async {
            match &self.config.webdav {
                Some(webdav) => webdav.delete_quietly(name).await,
                None => {
                    let _ = self.store().delete(&self.key(name)).await;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), removal).await;
    }
}
