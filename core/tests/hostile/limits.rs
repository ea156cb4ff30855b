//! The protective limits of `Config`.
