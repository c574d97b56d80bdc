//! The pkg-config file, `lib/pkgconfig/smfjit.pc`: how a C program finds the
//! header and links the library (`pkg-config --cflags --libs smfjit`).

use std::path::Path;

use crate::{Error, Package};

/// The file's text for an installation under `prefix`.
///
/// No `Libs.private`: only the shared library is installed, and it names
/// what it needs itself (libc, libm, libgcc_s) as ELF dependencies, so a
/// program links `-lsmfjit` alone. pkg-config cannot add a run path either,
/// so a program linked against a prefix the dynamic linker does not search
/// needs `-Wl,-rpath,$(pkg-config --variable=libdir smfjit)` or
/// `LD_LIBRARY_PATH`.
///
/// # Errors
/// [`Error::UnusablePrefix`] when the prefix is not text or holds white
/// space, which would split the flags pkg-config prints.
pub(crate) fn file(package: &Package, prefix: &Path) -> Result<String, Error> {
    let unusable = |reason| Error::UnusablePrefix {
        path: prefix.to_owned(),
        reason,
    };
    let text = prefix.to_str().ok_or_else(|| unusable("is not UTF-8"))?;
    if text.contains(char::is_whitespace) {
        return Err(unusable("holds white space"));
    }
    let Package {
        name,
        version,
        description,
    } = package;
    Ok(format!(
        "prefix={text}\n\
         exec_prefix=${{prefix}}\n\
         libdir=${{exec_prefix}}/lib\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: {name}\n\
         Description: {description}\n\
         Version: {version}\n\
         Libs: -L${{libdir}} -lsmfjit\n\
         Cflags: -I${{includedir}}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> Package {
        Package {
            name: "smfjit".into(),
            version: "1.2.3".into(),
            description: "A loader.".into(),
        }
    }

    #[test]
    fn names_the_prefix_once_and_derives_the_folders_from_it() {
        let pc = file(&package(), Path::new("/opt/smf")).unwrap();
        assert_eq!(
            pc,
            "prefix=/opt/smf\n\
             exec_prefix=${prefix}\n\
             libdir=${exec_prefix}/lib\n\
             includedir=${prefix}/include\n\
             \n\
             Name: smfjit\n\
             Description: A loader.\n\
             Version: 1.2.3\n\
             Libs: -L${libdir} -lsmfjit\n\
             Cflags: -I${includedir}\n"
        );
    }

    #[test]
    fn rejects_a_prefix_with_white_space() {
        let error = file(&package(), Path::new("/opt/smf jit")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the prefix '/opt/smf jit' holds white space: pkg-config cannot name it"
        );
    }
}
