//! Wire messages ⇄ domain types and store rows, at the service edge.

use proto::content::v1 as pb;

use crate::domain::{DirectoryInputError, ServiceListing};
use crate::store::directory::DirectoryEntryRow;

/// A `ListServices` request as a listing; an empty category means every category.
pub fn listing(request: &pb::ListServicesRequest) -> Result<ServiceListing, DirectoryInputError> {
    ServiceListing::parse(&request.account, &request.category)
}

/// A directory entry as served (its position and creation time stay inside).
pub fn service_entry(row: DirectoryEntryRow) -> pb::ServiceEntry {
    pb::ServiceEntry {
        id: row.id.to_string(),
        account: row.account,
        category: row.category,
        name: row.name,
        url: row.url,
        description: row.description,
        department: row.department,
    }
}
