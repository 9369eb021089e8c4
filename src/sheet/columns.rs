//! The sheet's columns and the header row that places them.

/// A column farewatch understands, declared in the order of [`Column::ALL`]
/// so the discriminant indexes [`Header`]'s table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    Origin,
    Destination,
    DepartDate,
    MaxPrice,
    Phone,
    ReturnDate,
    Currency,
    Adults,
    MinDrop,
    Cooldown,
    Active,
    Label,
}

impl Column {
    /// Every column, required ones first (the order the docs list them in).
    pub(super) const ALL: [Column; 12] = [
        Column::Origin,
        Column::Destination,
        Column::DepartDate,
        Column::MaxPrice,
        Column::Phone,
        Column::ReturnDate,
        Column::Currency,
        Column::Adults,
        Column::MinDrop,
        Column::Cooldown,
        Column::Active,
        Column::Label,
    ];

    /// The header name, lower-case.
    pub(super) fn name(self) -> &'static str {
        match self {
            Column::Origin => "origin",
            Column::Destination => "destination",
            Column::DepartDate => "depart_date",
            Column::ReturnDate => "return_date",
            Column::MaxPrice => "max_price",
            Column::Currency => "currency",
            Column::Phone => "phone",
            Column::Adults => "adults",
            Column::MinDrop => "min_drop",
            Column::Cooldown => "cooldown",
            Column::Active => "active",
            Column::Label => "label",
        }
    }

    /// Whether every row must have a value in this column.
    pub(super) fn is_required(self) -> bool {
        matches!(
            self,
            Column::Origin
                | Column::Destination
                | Column::DepartDate
                | Column::MaxPrice
                | Column::Phone
        )
    }

    /// What a good value looks like, for messages about missing values.
    pub(super) fn expected(self) -> &'static str {
        match self {
            Column::Origin | Column::Destination => {
                "IATA codes such as LHR, several joined by | (LHR|LGW)"
            }
            Column::DepartDate | Column::ReturnDate => {
                "a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD"
            }
            Column::MaxPrice => "the most you will pay, such as 349.99",
            Column::Currency => "an ISO 4217 code such as EUR",
            Column::Phone => "E.164 numbers such as +14155550123, several joined by |",
            Column::Adults => "a whole number from 1 to 9",
            Column::MinDrop => "an amount such as 25 or a percentage such as 5%",
            Column::Cooldown => "a duration such as 6h, 30m or 1d, or 0 for none",
            Column::Active => "true or false (yes/no, y/n, 1/0)",
            Column::Label => "any text",
        }
    }

    fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Lower-cases a header cell and turns spaces and hyphens into underscores,
/// so `Max Price` and `max-price` both name `max_price`.
pub(super) fn normalise_header(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Where each column sits in the header row.
#[derive(Debug)]
pub(super) struct Header {
    /// Field index of each known column, indexed by [`Column::slot`].
    positions: [Option<usize>; Column::ALL.len()],
    /// Number of fields in the header row.
    pub(super) width: usize,
    /// Fields with an empty header: their values are ignored.
    pub(super) nameless: Vec<usize>,
    /// Header names farewatch does not know, each once, in sheet order.
    pub(super) unknown: Vec<String>,
}

/// Why a header row cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeaderProblem {
    /// None of the cells names a known column: probably a data row.
    NoKnownColumns,
    /// Known columns appear, but some required ones do not.
    Missing(Vec<&'static str>),
    /// A known column appears twice, so which one to read is ambiguous.
    Duplicate(&'static str),
}

impl Header {
    /// Resolves a header row (cells as they appear in the sheet).
    pub(super) fn resolve<'a>(
        cells: impl IntoIterator<Item = &'a str>,
    ) -> Result<Header, HeaderProblem> {
        let mut header = Header {
            positions: [None; Column::ALL.len()],
            width: 0,
            nameless: Vec::new(),
            unknown: Vec::new(),
        };
        for (index, raw) in cells.into_iter().enumerate() {
            header.width = index + 1;
            let name = normalise_header(raw);
            if name.is_empty() {
                header.nameless.push(index);
                continue;
            }
            match Column::from_name(&name) {
                Some(column) => {
                    let slot = &mut header.positions[column.slot()];
                    if slot.is_some() {
                        return Err(HeaderProblem::Duplicate(column.name()));
                    }
                    *slot = Some(index);
                }
                None => {
                    if !header.unknown.contains(&name) {
                        header.unknown.push(name);
                    }
                }
            }
        }
        if header.positions.iter().all(Option::is_none) {
            return Err(HeaderProblem::NoKnownColumns);
        }
        let missing: Vec<&'static str> = Column::ALL
            .into_iter()
            .filter(|c| c.is_required() && header.position(*c).is_none())
            .map(Column::name)
            .collect();
        if !missing.is_empty() {
            return Err(HeaderProblem::Missing(missing));
        }
        Ok(header)
    }

    /// A header naming every column once, in [`Column::ALL`] order: how a
    /// row given as named fields (an API watch) is laid out.
    pub(super) fn every_column() -> Header {
        let mut positions = [None; Column::ALL.len()];
        for column in Column::ALL {
            positions[column.slot()] = Some(column.slot());
        }
        Header {
            positions,
            width: Column::ALL.len(),
            nameless: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// The field index of `column`, if the header has it.
    pub(super) fn position(&self, column: Column) -> Option<usize> {
        self.positions[column.slot()]
    }
}

impl Column {
    fn slot(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_in_any_order_and_case() {
        let header = Header::resolve([
            " Phone ",
            "MAX PRICE",
            "depart-date",
            "Destination",
            "origin",
            "notes",
            "",
            "Notes",
        ])
        .unwrap();
        assert_eq!(header.position(Column::Phone), Some(0));
        assert_eq!(header.position(Column::MaxPrice), Some(1));
        assert_eq!(header.position(Column::DepartDate), Some(2));
        assert_eq!(header.position(Column::Origin), Some(4));
        assert_eq!(header.position(Column::Label), None);
        assert_eq!(header.unknown, ["notes"]);
        assert_eq!(header.nameless, [6]);
        assert_eq!(header.width, 8);
    }

    #[test]
    fn reports_missing_duplicate_and_absent_headers() {
        assert_eq!(
            Header::resolve(["origin", "destination", "label"]).unwrap_err(),
            HeaderProblem::Missing(vec!["depart_date", "max_price", "phone"])
        );
        assert_eq!(
            Header::resolve(["origin", "Origin"]).unwrap_err(),
            HeaderProblem::Duplicate("origin")
        );
        assert_eq!(
            Header::resolve(["LHR", "JFK", "2027-03-01"]).unwrap_err(),
            HeaderProblem::NoKnownColumns
        );
    }
}
