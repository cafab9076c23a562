//! Tags on any resource the simulator knows.

use crate::ec2::error::Ec2Error;
use crate::ec2::model::Region;
use crate::ec2::query::Params;
use crate::ec2::xml::Xml;

pub(super) fn create_tags(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let resources = params.list("ResourceId");
    if resources.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    let tags = params.tags("Tag");
    if tags.is_empty() {
        return Err(Ec2Error::missing("Tag"));
    }
    // All or nothing: check every resource first.
    for resource in &resources {
        region.tags_mut(resource)?;
    }
    for resource in &resources {
        let map = region.tags_mut(resource)?;
        for (key, value) in &tags {
            map.insert(key.clone(), value.clone().unwrap_or_default());
        }
    }
    let mut x = Xml::default();
    x.leaf("return", true);
    Ok(x)
}

pub(super) fn delete_tags(params: &Params, region: &mut Region) -> Result<Xml, Ec2Error> {
    let resources = params.list("ResourceId");
    if resources.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    let tags = params.tags("Tag");
    for resource in &resources {
        region.tags_mut(resource)?;
    }
    for resource in &resources {
        let map = region.tags_mut(resource)?;
        if tags.is_empty() {
            map.clear();
        }
        for (key, value) in &tags {
            // With a value, the tag goes only if it still has that value.
            let matches = value.as_ref().is_none_or(|v| map.get(key) == Some(v));
            if matches {
                map.remove(key);
            }
        }
    }
    let mut x = Xml::default();
    x.leaf("return", true);
    Ok(x)
}
