//! The dashboard's two languages and how it writes values for people.
//!
//! Vietnamese is the default; English is a switch kept in a cookie. Every label is a field of
//! `Texts`, declared once with both languages side by side, so a label cannot exist in one
//! language only. Amounts are whole đồng written with grouped thousands (`1.234.567 ₫`, English
//! `1,234,567 ₫`), dates `dd/mm/yyyy`, times `dd/mm/yyyy HH:MM:SS` at +07:00. Enum labels fall back
//! to the wire name, so a state or field added later shows as itself until it is translated.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::recon::Category;
use crate::domain::vn_offset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Self {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Vi => &VI,
            Lang::En => &EN,
        }
    }

    /// An amount in đồng: `1.234.567 ₫` (English `1,234,567 ₫`); negative differences keep a sign.
    pub fn money(self, dong: i64) -> String {
        let sep = match self {
            Lang::Vi => '.',
            Lang::En => ',',
        };
        let digits = dong.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 4);
        if dong < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(sep);
            }
            out.push(c);
        }
        out.push_str(" ₫");
        out
    }

    /// An optional amount; an empty string for none.
    pub fn money_opt(self, dong: Option<i64>) -> String {
        dong.map(|d| self.money(d)).unwrap_or_default()
    }

    /// A count with grouped thousands.
    pub fn count(self, n: i64) -> String {
        let m = self.money(n);
        m.trim_end_matches(" ₫").to_owned()
    }
}

/// `dd/mm/yyyy`.
pub fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// `dd/mm/yyyy HH:MM:SS` at +07:00.
pub fn time(t: DateTime<Utc>) -> String {
    t.with_timezone(&vn_offset()).format("%d/%m/%Y %H:%M:%S").to_string()
}

macro_rules! texts {
    ($($key:ident: $vi:literal, $en:literal;)+) => {
        /// Every label of the dashboard, in one language.
        pub struct Texts {
            $(pub $key: &'static str,)+
        }
        pub static VI: Texts = Texts { $($key: $vi,)+ };
        pub static EN: Texts = Texts { $($key: $en,)+ };
    };
}

texts! {
    app: "Đối soát phí, lệ phí", "Fee reconciliation";
    lang_switch: "English", "Tiếng Việt";
    nav_calendar: "Lịch đối soát", "Calendar";
    nav_exceptions: "Ngoại lệ", "Exceptions";
    nav_settlements: "Tệp đối soát", "Settlement files";
    nav_payments: "Tra cứu thanh toán", "Find a payment";
    nav_notifications: "Thông báo lỗi", "Failed notifications";
    nav_ledger: "Sổ cái", "Ledger";
    nav_remittances: "Nộp ngân sách", "Remittance";
    nav_receipts: "Biên lai", "Receipts";
    logout: "Đăng xuất", "Log out";
    signed_in_as: "Đăng nhập:", "Signed in:";
    read_only: "chỉ xem", "read only";
    login_title: "Đăng nhập", "Log in";
    user_name: "Tên đăng nhập", "User name";
    password: "Mật khẩu", "Password";
    login_button: "Đăng nhập", "Log in";
    login_failed: "Sai tên đăng nhập hoặc mật khẩu.", "Wrong user name or password.";
    login_locked: "Đăng nhập sai quá nhiều lần. Hãy thử lại sau", "Too many failed logins. Try again in";
    minutes: "phút", "minutes";
    login_role: "Tài khoản này không dùng được bảng điều khiển (chỉ cán bộ tài chính, kiểm toán, quản trị).", "This account cannot use the dashboard (finance, auditor and admin accounts only).";
    login_expired_form: "Biểu mẫu đăng nhập đã hết hạn; hãy thử lại.", "The login form expired; try again.";
    logged_out: "Bạn đã đăng xuất.", "You are logged out.";
    error_title: "Không thực hiện được", "Could not do that";
    forbidden: "Vai trò của bạn không được dùng trang hoặc thao tác này.", "Your role may not use this page or action.";
    csrf_failed: "Biểu mẫu không hợp lệ hoặc đã cũ (mã chống giả mạo sai). Hãy tải lại trang và thử lại.", "The form is invalid or stale (wrong anti-forgery token). Reload the page and try again.";
    internal_error: "Lỗi hệ thống; chi tiết đã được ghi lại.", "Internal error; the details were logged.";
    back: "Quay lại", "Back";
    calendar_title: "Lịch đối soát", "Reconciliation calendar";
    prev_month: "‹ Tháng trước", "‹ Previous month";
    next_month: "Tháng sau ›", "Next month ›";
    month: "Tháng", "Month";
    legend: "Chú thích", "Legend";
    weekdays: "T2,T3,T4,T5,T6,T7,CN", "Mon,Tue,Wed,Thu,Fri,Sat,Sun";
    state_no_file: "Chưa có tệp", "No file";
    state_not_run: "Chưa đối soát", "Not run";
    state_open_exceptions: "Còn ngoại lệ", "Open exceptions";
    state_reconciled: "Đã đối soát", "Reconciled";
    state_closed: "Đã khóa sổ", "Closed";
    day_title: "Ngày", "Day";
    gateway: "Cổng thanh toán", "Gateway";
    run_info: "Lần đối soát gần nhất", "Latest run";
    run_by: "bởi", "by";
    report_hash: "Mã băm báo cáo", "Report hash";
    closed_at: "Khóa sổ lúc", "Closed at";
    run_button: "Chạy đối soát", "Run reconciliation";
    rerun_button: "Chạy lại đối soát", "Run again";
    close_button: "Khóa sổ ngày này", "Close this day";
    close_confirm: "Khóa sổ ngày này? Sau khi khóa không sửa được nữa.", "Close this day? Nothing about it can change afterwards.";
    close_needs: "Chỉ khóa sổ được khi mọi ngoại lệ đã xử lý xong và lần đối soát gần nhất còn đúng với dữ liệu.", "A day closes only when every exception is resolved and the latest run still matches the data.";
    not_run_yet: "Ngày này chưa được đối soát cho cổng này.", "This day has not been reconciled for this gateway.";
    closed_notice: "Ngày này đã khóa sổ: chỉ xem.", "This day is closed: read only.";
    downloads: "Tải báo cáo", "Download the report";
    summary: "Tổng hợp theo loại", "Summary by category";
    count: "Số lượng", "Count";
    amount: "Số tiền", "Amount";
    recorded_amount: "Số tiền ghi nhận", "Recorded";
    settled_amount: "Số tiền đối soát", "Settled";
    expected_amount: "Số tiền phải nộp", "Expected";
    chart_title: "Số tiền theo loại", "Amount by category";
    totals: "Tổng tiền", "Totals";
    recorded_paid: "Đã ghi nhận thanh toán", "Recorded paid";
    settled_gross: "Tổng tiền đối soát", "Settled (gross)";
    gateway_fees: "Phí cổng thanh toán", "Gateway fees";
    refunds: "Hoàn tiền", "Refunds";
    settled_net: "Thực nhận", "Settled (net)";
    by_kind: "Theo loại thu", "By fee kind";
    kind_phi: "Phí", "Fees (phí)";
    kind_le_phi: "Lệ phí", "Charges (lệ phí)";
    kind_duplicates: "Thanh toán trùng", "Duplicates";
    kind_unallocated: "Chưa phân bổ", "Unallocated";
    no_gateway_title: "Hồ sơ miễn phí và ngân sách hỗ trợ trong ngày", "Waived and budget-covered cases of the day";
    waived: "Miễn phí", "Waived";
    budget_covered: "Ngân sách chi trả", "Budget covered";
    citizen_due: "Người dân nộp", "Citizen pays";
    budget_due: "Ngân sách trả", "Budget pays";
    none: "Không có", "None";
    more_not_shown: "Chỉ hiện những dòng đầu tiên.", "Only the first rows are shown.";
    exceptions_title: "Ngoại lệ", "Exceptions";
    filter: "Lọc", "Filter";
    show: "Xem", "Show";
    all_exceptions_of_day: "Xem tất cả ngoại lệ của ngày", "See every exception of the day";
    all: "Tất cả", "All";
    unresolved: "Chưa xong (mở hoặc chờ duyệt)", "Unresolved (open or pending)";
    category: "Loại", "Category";
    state: "Trạng thái", "State";
    from: "Từ ngày", "From";
    to: "Đến ngày", "To";
    date: "Ngày", "Date";
    key: "Mã ngoại lệ", "Exception id";
    case_code: "Mã hồ sơ", "Case code";
    txn_ref: "Mã tham chiếu", "Reference (txn_ref)";
    details: "Chi tiết", "Details";
    next_page: "Trang sau ›", "Next page ›";
    no_exceptions: "Không có ngoại lệ nào khớp bộ lọc.", "No exception matches the filter.";
    not_in_latest_run: "không còn trong lần đối soát gần nhất", "not in the latest run";
    exception_title: "Ngoại lệ", "Exception";
    item: "Mục đối soát", "Reconciliation item";
    evidence: "Đối chiếu", "Side by side";
    case: "Hồ sơ", "Case";
    payment: "Thanh toán", "Payment";
    settlement_line: "Dòng đối soát", "Settlement line";
    callbacks: "Thông báo gốc từ cổng (bằng chứng)", "Raw gateway callbacks (evidence)";
    no_case: "Không có hồ sơ", "No case";
    no_payment: "Không có thanh toán trong hệ thống", "No payment in our records";
    no_line: "Không có dòng đối soát", "No settlement line";
    no_callbacks: "Không có thông báo nào", "No callback";
    resolution: "Cách xử lý", "Resolution";
    requested_by: "Đề nghị bởi", "Requested by";
    approved_by: "Duyệt bởi", "Approved by";
    last_rejection: "Lần từ chối gần nhất", "Last rejection";
    resolve_title: "Xử lý ngoại lệ", "Resolve";
    action: "Cách xử lý", "Action";
    note: "Ghi chú", "Note";
    case_code_hint: "Mã hồ sơ (chỉ khi xác nhận một dòng chưa có thanh toán)", "Case code (only to confirm a line no payment has)";
    resolve_button: "Ghi nhận", "Submit";
    four_eyes_note: "Hoàn tiền, xóa sổ và xác nhận từ đối soát cần một cán bộ tài chính khác duyệt.", "Refund, write-off and confirm-from-settlement wait for another finance user's approval.";
    approve_title: "Duyệt", "Decide";
    approve_button: "Duyệt", "Approve";
    reject_button: "Từ chối", "Reject";
    own_request: "Bạn là người đề nghị; một cán bộ tài chính khác phải duyệt.", "You requested this; another finance user must decide.";
    done_resolved: "Đã ghi nhận cách xử lý.", "The resolution is recorded.";
    done_approved: "Đã duyệt.", "Approved.";
    done_rejected: "Đã từ chối; ngoại lệ mở lại.", "Rejected; the exception is open again.";
    done_closed: "Đã khóa sổ ngày.", "The day is closed.";
    done_resent: "Đã đưa thông báo vào hàng gửi lại.", "The notification is queued again.";
    search_title: "Tra cứu thanh toán", "Find a payment";
    search_hint: "Mã hồ sơ, mã thanh toán (pay_…) hoặc mã tham chiếu (txn_ref)", "Case code, payment id (pay_…) or txn_ref";
    search_button: "Tìm", "Search";
    read_as: "Hiểu là", "Read as";
    not_found: "Không tìm thấy.", "Nothing found.";
    status: "Trạng thái", "Status";
    gateway_txn_no: "Mã giao dịch cổng", "Gateway txn no";
    paid_at: "Thanh toán lúc", "Paid at";
    flags: "Cờ", "Flags";
    payment_id: "Mã thanh toán", "Payment id";
    events: "Thông báo gửi cổng dịch vụ công", "Portal notifications";
    procedure: "Thủ tục", "Procedure";
    applicant: "Người nộp", "Applicant";
    channel: "Kênh nộp", "Channel";
    received_at: "Tiếp nhận lúc", "Received at";
    unit: "Đơn vị", "Unit";
    version: "Phiên bản", "Version";
    file: "Tệp", "File";
    line_no: "Dòng", "Line";
    fee: "Phí cổng", "Gateway fee";
    txn_time: "Thời điểm giao dịch", "Transaction time";
    received: "Nhận lúc", "Received";
    source: "Nguồn", "Source";
    signature: "Chữ ký", "Signature";
    valid: "hợp lệ", "valid";
    invalid: "KHÔNG hợp lệ", "NOT valid";
    result: "Kết quả", "Result";
    body: "Nội dung", "Body";
    settlements_title: "Tệp đối soát", "Settlement files";
    upload_title: "Nhập tệp đối soát", "Import a settlement file";
    profile: "Định dạng tệp", "File profile";
    choose_file: "Tệp (CSV)", "File (CSV)";
    upload_button: "Nhập tệp", "Import";
    upload_note: "Tệp được nhập trọn vẹn hoặc không nhập gì; lỗi chỉ rõ dòng, cột và lý do.", "A file is imported whole or not at all; an error names its line, column and reason.";
    imported_at: "Nhập lúc", "Imported at";
    imported_by: "Người nhập", "Imported by";
    lines: "Số dòng", "Lines";
    lines_unit: "dòng", "lines";
    rows_unit: "dòng dữ liệu", "rows";
    items_unit: "mục", "items";
    entries_unit: "bút toán", "entries";
    no_files: "Chưa có tệp nào.", "No file yet.";
    import_errors: "Tệp bị từ chối", "The file was refused";
    line: "Dòng", "Line";
    column: "Cột", "Column";
    reason: "Lý do", "Reason";
    job_running: "Đang xử lý…", "Working…";
    job_import: "Nhập tệp", "Import of";
    job_run: "Đối soát", "Reconciliation of";
    job_reading: "Đang đọc tệp", "Reading the file";
    job_writing: "Đang ghi", "Writing";
    job_run_reading: "Đang đọc dữ liệu của ngày", "Reading the day's data";
    job_run_matching: "Đang đối chiếu", "Matching";
    job_run_saving: "Đang lưu kết quả", "Saving the results";
    job_done_import: "Đã nhập tệp", "Imported";
    job_failed: "Không thành công", "Failed";
    elapsed: "Đã chạy", "Elapsed";
    seconds: "giây", "s";
    open_day: "Mở ngày", "Open the day";
    ledger_title: "Sổ cái", "Ledger";
    export_title: "Xuất sổ cái cho kiểm toán", "Export the ledger for auditors";
    export_note: "Tệp zip gồm entries.csv và manifest.json, ký bằng khóa sổ cái; kiểm tra bằng `feerecon ledger verify`. Giữ nguyên từng byte.", "A zip of entries.csv and manifest.json, signed with the ledger key; check it with `feerecon ledger verify`. Byte-exact.";
    export_button: "Tải xuống", "Download";
    verify_title: "Kiểm tra chuỗi sổ cái", "Verify the ledger chain";
    verify_button: "Kiểm tra ngay", "Verify now";
    verify_ok: "Chuỗi hợp lệ", "The chain is intact";
    verify_bad: "Chuỗi KHÔNG hợp lệ", "The chain is NOT intact";
    checkpoints: "Điểm kiểm soát đã ký", "Signed checkpoints";
    kind: "Loại", "Kind";
    last_seq: "Số thứ tự cuối", "Last seq";
    written_at: "Ghi lúc", "Written at";
    public_key: "Khóa công khai", "Public key";
    notifications_title: "Thông báo gửi lỗi (dead letter)", "Dead-lettered notifications";
    notifications_note: "Các thông báo cổng dịch vụ công chưa nhận sau số lần thử tối đa.", "Portal notifications not accepted after the maximum attempts.";
    event: "Sự kiện", "Event";
    attempts: "Số lần thử", "Attempts";
    last_error: "Lỗi gần nhất", "Last error";
    resend_button: "Gửi lại", "Re-send";
    no_dead_letters: "Không có thông báo lỗi.", "No dead letter.";
    actions: "Thao tác", "Actions";
    remittances_title: "Nộp ngân sách nhà nước", "Remittance to the State Treasury";
    remittances_note: "Số phí, lệ phí đã thu theo kỳ và tiểu mục, từ sổ cái; hạn nộp vào tài khoản chờ nộp ngân sách. Ghi nhận đã nộp cần một cán bộ tài chính khác duyệt.", "Fees collected by period and budget sub-item, from the ledger; the deadline to deposit them in the account awaiting the budget. Recording a transfer needs another finance user's approval.";
    no_periods: "Chưa có kỳ nào có số thu.", "No period has collections yet.";
    period: "Kỳ", "Period";
    deposit_by: "Hạn nộp", "Deposit by";
    due: "Phải nộp", "Due";
    remitted: "Đã nộp", "Remitted";
    outstanding: "Còn phải nộp", "Outstanding";
    late: "Quá hạn", "Late";
    transferred_on: "Ngày nộp", "Transferred on";
    reference: "Số chứng từ", "Reference";
    request_remittance_button: "Ghi nhận đã nộp", "Record the transfer";
    done_requested: "Đã gửi đề nghị; chờ cán bộ khác duyệt.", "Requested; awaiting another user's approval.";
    done_recorded: "Đã duyệt; khoản nộp đã ghi sổ cái.", "Approved; the transfer is posted in the ledger.";
    done_remittance_rejected: "Đã từ chối; kỳ mở lại với số liệu đã chốt.", "Rejected; the period is open again with its frozen figures.";
    receipts_title: "Biên lai điện tử", "E-receipts";
    receipts_hint: "Tìm theo mã hồ sơ và/hoặc ngày lập.", "Search by case code and/or date of issue.";
    receipt: "Biên lai", "Receipt";
    symbol: "Mẫu / ký hiệu", "Template / symbol";
    number: "Số", "No.";
    issue_date: "Ngày lập", "Date of issue";
    payer: "Người nộp tiền", "Payer";
    total: "Tổng tiền", "Total";
    in_words: "Bằng chữ", "In words";
    related: "Biên lai liên quan", "Related receipt";
    print: "Bản in", "Printable";
    no_receipts: "Không có biên lai nào.", "No receipt.";
    search_needed: "Nhập mã hồ sơ hoặc chọn ngày.", "Give a case code or a date.";
    fee_item: "Khoản thu", "Fee item";
    subitem: "Tiểu mục", "Sub-item";
    replaced_by: "Được thay thế bởi", "Replaced by";
    adjusted_by: "Được điều chỉnh bởi", "Adjusted by";
    issued_by: "Người lập", "Issued by";
    replace_title: "Lập biên lai thay thế", "Issue a replacement";
    replace_note: "Thay thế khi sai sót khác tên, số tiền bằng chữ (TT 91/2026 Điều 20): cùng các khoản thu; tên người nộp mới nếu nhập.", "For errors other than in a name or the amount in words (TT 91/2026 Art. 20): the same items; the payer's name corrected when given.";
    payer_name_new: "Tên người nộp đúng (nếu sửa)", "Correct payer name (if corrected)";
    replace_button: "Lập biên lai thay thế", "Issue the replacement";
    adjust_title: "Lập biên lai điều chỉnh", "Issue an adjustment";
    adjust_note: "Chênh lệch từng khoản, đồng, số nguyên: âm để giảm (hoàn tiền), dương để tăng; bỏ trống khoản không đổi.", "The difference per item in whole đồng: negative to reduce (a refund), positive to increase; leave unchanged items blank.";
    difference: "Chênh lệch (đồng)", "Difference (đồng)";
    adjust_button: "Lập biên lai điều chỉnh", "Issue the adjustment";
    done_replaced: "Đã lập biên lai thay thế.", "The replacement is issued.";
    done_adjusted: "Đã lập biên lai điều chỉnh.", "The adjustment is issued.";
    summary_title: "Bảng tổng hợp biên lai (Mẫu 01/TH-BLĐT)", "Receipt summary (Form 01/TH-BLĐT)";
    summary_link: "Bảng tổng hợp trong ngày", "The day's summary";
    summary_note: "Gửi cơ quan thuế trong ngày lập (NĐ 254/2026 Điều 29); đối chiếu với các xác nhận thu tiền trên sổ cái.", "Sent to the tax office within the day of issue (NĐ 254/2026 Art. 29); checked against the ledger's confirmations.";
    fee_types: "Tên loại phí, lệ phí", "Fee types";
    adjusted_period: "Kỳ điều chỉnh", "Period adjusted";
    explanation: "Giải trình", "Explanation";
    originals: "Biên lai gốc", "Originals";
    adjustments: "Điều chỉnh", "Adjustments";
    ledger_check: "Đối chiếu sổ cái", "Check against the ledger";
    confirmations: "Bút toán xác nhận", "Confirmations";
    collected: "Đã thu theo sổ cái", "Collected per the ledger";
    ledger_matches: "Khớp với sổ cái", "Matches the ledger";
    ledger_differs: "KHÔNG khớp với sổ cái", "Does NOT match the ledger";
    numbering: "Dãy số", "Numbering";
    contiguous: "liên tục", "contiguous";
    gaps: "CÓ KHOẢNG TRỐNG", "HAS GAPS";
}

/// A category's label.
pub fn category(lang: Lang, c: Category) -> &'static str {
    match lang {
        Lang::Vi => crate::reconcile::render::category_vi(c),
        Lang::En => match c {
            Category::DuplicateSettlementLine => "Duplicate settlement line",
            Category::Refund => "Refund",
            Category::MissingInRecords => "Missing in our records",
            Category::UnconfirmedInRecords => "Unconfirmed in our records",
            Category::DuplicatePayment => "Duplicate payment",
            Category::AmountMismatch => "Amount mismatch",
            Category::FeeMismatch => "Fee mismatch",
            Category::Matched => "Matched",
            Category::MissingInSettlement => "Missing in settlement",
        },
    }
}

/// A label for a wire name (exception states, actions, payment statuses, line statuses,
/// channels, callback sources); the wire name itself when it has none.
pub fn word(lang: Lang, wire: &str) -> String {
    let (vi, en) = match wire {
        "open" => ("Mở", "Open"),
        "pending_approval" => ("Chờ duyệt", "Pending approval"),
        "resolved" => ("Đã xử lý", "Resolved"),
        "superseded" => ("Không còn áp dụng", "Superseded"),
        "matched" => ("Khớp", "Matched"),
        "refund" => ("Hoàn tiền", "Refund"),
        "write_off" => ("Xóa sổ", "Write off"),
        "confirm_from_settlement" => ("Xác nhận từ đối soát", "Confirm from settlement"),
        "accept" => ("Chấp nhận (không cần xử lý tiền)", "Accept (no money moves)"),
        "pending" => ("Đang chờ", "Pending"),
        "paid" => ("Đã thanh toán", "Paid"),
        "failed" => ("Thất bại", "Failed"),
        "expired" => ("Hết hạn", "Expired"),
        "waived" => ("Miễn phí", "Waived"),
        "budget_covered" => ("Ngân sách chi trả", "Budget covered"),
        "success" => ("Thành công", "Success"),
        "online_full" => ("Trực tuyến toàn trình", "Fully online"),
        "online_partial" => ("Trực tuyến một phần", "Partly online"),
        "counter" => ("Trực tiếp", "At the counter"),
        "post" => ("Bưu chính", "By post"),
        "vnpay" => ("VNPAY", "VNPAY"),
        "momo" => ("MoMo", "MoMo"),
        "zalopay" => ("ZaloPay", "ZaloPay"),
        "recorded" => ("Đã ghi nhận", "Recorded"),
        "day" => ("Ngày", "Day"),
        "week" => ("Tuần", "Week"),
        "month" => ("Tháng", "Month"),
        "dvcqg" => ("Cổng DVCQG", "DVCQG"),
        "issued" => ("Đã lập", "Issued"),
        "replaced" => ("Đã bị thay thế", "Replaced"),
        "adjusted" => ("Đã bị điều chỉnh", "Adjusted"),
        "original" => ("Gốc", "Original"),
        "replacement" => ("Thay thế", "Replacement"),
        "adjustment" => ("Điều chỉnh", "Adjustment"),
        "citizen" => ("Người dân", "Citizen"),
        "budget" => ("Ngân sách", "Budget"),
        other => return other.to_owned(),
    };
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
    .to_owned()
}

/// The label of a report item's field (by its JSON name); the name itself when it has none.
pub fn field(lang: Lang, name: &str) -> String {
    let (vi, en) = match name {
        "key" => ("Mã ngoại lệ", "Key"),
        "category" => ("Loại", "Category"),
        "case_code" => ("Mã hồ sơ", "Case code"),
        "payment_id" => ("Mã thanh toán", "Payment id"),
        "txn_ref" => ("Mã tham chiếu", "txn_ref"),
        "gateway_txn_no" => ("Mã giao dịch cổng", "Gateway txn no"),
        "recorded_amount" => ("Số tiền ghi nhận", "Recorded amount"),
        "settled_amount" => ("Số tiền đối soát", "Settled amount"),
        "expected_amount" => ("Số tiền phải nộp", "Expected amount"),
        "counterpart_date" => ("Ngày của mục đối ứng", "Counterpart date"),
        "state" => ("Trạng thái", "State"),
        "business_date" => ("Ngày nghiệp vụ", "Business date"),
        "line_status" => ("Loại dòng", "Line status"),
        "fee" => ("Phí cổng", "Gateway fee"),
        other => return other.to_owned(),
    };
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_group_thousands_in_each_language() {
        assert_eq!(Lang::Vi.money(1_234_567), "1.234.567 ₫");
        assert_eq!(Lang::En.money(1_234_567), "1,234,567 ₫");
        assert_eq!(Lang::Vi.money(0), "0 ₫");
        assert_eq!(Lang::Vi.money(-1_000), "-1.000 ₫");
        assert_eq!(Lang::Vi.money(i64::MIN), "-9.223.372.036.854.775.808 ₫");
        assert_eq!(Lang::Vi.count(12_345), "12.345");
    }

    #[test]
    fn dates_are_day_month_year_at_plus_seven() {
        assert_eq!(date(NaiveDate::from_ymd_opt(2024, 7, 5).unwrap()), "05/07/2024");
        let t = DateTime::parse_from_rfc3339("2024-07-15T17:30:00Z").unwrap().to_utc();
        assert_eq!(time(t), "16/07/2024 00:30:00");
    }

    #[test]
    fn unknown_wire_names_show_as_themselves() {
        assert_eq!(word(Lang::Vi, "pending_approval"), "Chờ duyệt");
        assert_eq!(word(Lang::En, "some_new_state"), "some_new_state");
        assert_eq!(field(Lang::En, "some_new_field"), "some_new_field");
    }
}
