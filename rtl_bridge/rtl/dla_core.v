// dla_core: the DLA's weight-stationary ROWS x COLS int8 MAC array, running one tile.
//
// A tile is <= COLS filters x `pixels` output pixels of a convolution GEMM (dla/cycles/compute.py),
// its reduction (the im2col window, W rows) cut into `folds` = ceil(W/ROWS) reduction folds.
// Fold f keeps window rows [f*ROWS, (f+1)*ROWS) x <= COLS filters of weights in the PEs while
// the same `pixels` pixels stream through (their activations of those rows).  Partial sums of
// every (pixel, column) are kept, exact, in an on-chip accumulator buffer (MAX_PIX pixels x
// COLS x BUF_W bits) between folds; only after the last fold are bias, saturation,
// requantizer and activation applied and the outputs streamed.  Per pixel p and column c:
//
//   acc[p][c] = sat_ACC_W( sum_r x[p][r] * w[r][c]  +  bias[c] )        (exact sum, then clamp)
//   q[p][c]   = dla_requant(acc, mult[c], shift[c], neg_mult[c], neg_shift[c], leaky_en)
//
// Python model: dla.int_kernels.conv_int (exact accumulation, bias, saturation to acc_bits,
// gemmlowp requantization with the saturating left shift, fused LeakyReLU, int8); the adapter
// rtl_bridge/tile.py cuts a layer into tiles and produces stimulus and expected outputs.
//
// ---------------------------------------------------------------------------- protocol
// Cycle n is the clock period that ends with rising edge n.
//  * start / start_ready: a tile begins in the cycle where start & start_ready & pixels != 0
//    (start_ready = ~busy | done: an idle core, or the cycle in which the previous tile's
//    last beat leaves, so back-to-back tiles lose no cycle).  That cycle is tile cycle 0.
//    bias/mult/shift/neg_mult/neg_shift/leaky_en, `pixels` and `folds` are latched at that
//    edge (start is ignored while pixels == 0 or folds == 0).  With folds > 1, pixels must be
//    <= MAX_PIX (the accumulator buffer; a simulation check stops otherwise).
//  * folds: fold f (0-based) runs a weight phase then a pixel phase.  Fold 0's weight phase
//    starts in tile cycle 0; fold f+1's starts VP = ROWS+COLS-1 cycles after fold f's last
//    pixel was accepted (the array drains first), i.e. in tile cycle (f+1)*T with
//    T = pixels + 2*ROWS + COLS - 2 when no input gap occurs.
//  * weights: w_row is sampled in the ROWS cycles of each weight phase (w_load is high in
//    them, no handshake; fold 0: tile cycles 0 .. ROWS-1): beat k of fold f is reduction row
//    f*ROWS + k, i.e. w_row[8c +: 8] = w[f*ROWS + k][c].  The rows form a
//    shift register ROWS deep (new beats enter at row ROWS-1 and move up one row per beat),
//    so a partial tile (rows_used < ROWS) still takes ROWS beats, padded with zero rows.
//  * inputs: in_data/in_valid/in_ready, one beat per pixel and fold, in_data[8r +: 8] =
//    x[p][f*ROWS + r] (unused rows may hold anything: their weights are zero).  in_ready is
//    first high in tile cycle ROWS, and is low during every weight phase and drain.
//  * outputs: out_data/out_valid/out_ready, one beat per pixel in pixel order,
//    out_data[8c +: 8] = q[p][c], all COLS columns of a pixel together.
//  * done: high for one cycle, the cycle in which the tile's last output beat is accepted
//    (out_valid & out_ready); it is combinational in out_ready.
//
// ---------------------------------------------------------------------------- timing
// Pipeline latencies, for a pixel accepted (in_valid & in_ready) in cycle k.  Nothing stalls;
// input gaps travel through the array as invalid wavefronts.
//   input skew      row r sees the pixel's activation in cycle k + r (row 0 combinationally
//                   from in_data, row r through r registers: ROWS-1 cycles of skew in all)
//   PE (r, c)       multiplies-accumulates in cycle k + r + c; 1 register (activation to
//                   the right, partial sum down)
//   column c        its sum leaves the bottom row in cycle k + ROWS + c
//   output deskew   COLS-1-c registers on column c: all columns together in cycle
//                   k + ROWS + COLS - 1 (COLS-1 cycles of output skew)
//   bias + clamp    combinational, in front of the requantizer
//   dla_requant     REQUANT_LATENCY cycles (its LATENCY, 3)
//   output buffer   0 cycles when empty (bypass)
// => the pixel's output beat is offered in cycle k + ROWS + COLS - 1 + REQUANT_LATENCY.
//
// Cycle count of a tile (the convention; tests/rtl_bridge/dla_core checks it): tile cycle 0 is
// the cycle in which start is taken.  With no input gap and no output stall, done is high in
//     cycle N = folds * (pixels + 2*ROWS + COLS - 2) + REQUANT_LATENCY
//             = dla.cycles.tile_cycles(rows_used, cols_used, pixels, hw, folds)
// Each non-last fold f occupies tile cycles f*T .. (f+1)*T - 1 (its last pixel's aligned column
// sums enter the accumulator buffer in cycle (f+1)*T, the same cycle in which the next fold's
// first weight beat is sampled: no PE still needs the old weights then).  The last fold is
// timed exactly like a one-fold tile, shifted by (folds-1)*T.  For folds = 1:
// i.e. N = (index of the rising edge that samples done) - (index of the edge that samples
// start).  Weight beats fill cycles 0..ROWS-1, pixel beats ROWS..ROWS+pixels-1, and the last
// pixel (k = ROWS+pixels-1) leaves in k + ROWS + COLS - 1 + REQUANT_LATENCY = N.  The next
// tile's start can be taken in cycle N (start_ready), so back-to-back tiles take exactly the
// sum of their N.  rows_used / cols_used do not change N: the weight shift register is always
// ROWS deep and the skews always ROWS-1 / COLS-1.
//
// Accumulator buffer: partial sums are added exactly in BUF_W = SUM_W + FOLD_W bits (one fold's
// column sum fits SUM_W, and < 2^FOLD_W folds add at most FOLD_W bits), and the final
// buffer + column sum + bias is saturated to ACC_W once, after the last fold: exactly
// dla.int_kernels.conv_int (exact sum, then fit to acc_bits).  (For ACC_W = 32 even a
// per-fold saturation could not differ: |partial| <= W*128*128 <= 4608*2^14 < 2^27 < 2^31 for
// every yolov3-tiny layer, W <= 3*3*512.)
//
// Backpressure: the array never stalls.  A credit counter (pixels accepted - beats sent)
// (counting the last fold's pixels only; earlier folds
// produce no output) limits in-flight pixels to DEPTH = ROWS + COLS + REQUANT_LATENCY, the size of the output
// buffer, so no result is lost; without backpressure at most DEPTH - 1 are in flight and
// in_ready never drops.
//
// Verilog-2005, synthesizable (initial blocks and the translate_off block are checks only).
`default_nettype none

module dla_core #(
    parameter integer ROWS = 16,            // PE rows: reduction rows per tile (HardwareConfig.rows)
    parameter integer COLS = 16,            // PE columns: filters per tile (HardwareConfig.cols)
    parameter integer ACC_W = 32,           // accumulator width, 8..32 (HardwareConfig.acc_bits)
    parameter integer MULT_W = 32,          // requantizer multiplier width, 2..32 (HardwareConfig.multiplier_bits)
    parameter integer REQUANT_LATENCY = 3,  // must equal dla_requant's LATENCY (HardwareConfig.requant_latency)
    parameter integer PIX_W = 16,           // width of the pixel count of one tile
    parameter integer FOLD_W = 12,          // width of the fold count of one tile
    parameter integer MAX_PIX = 256         // accumulator buffer: most pixels of a tile with folds > 1
) (
    input  wire                     clk,
    input  wire                     rst,          // synchronous, active high
    // tile control
    input  wire                     start,
    output wire                     start_ready,  // ~busy | done
    input  wire [PIX_W-1:0]         pixels,       // input vectors of the tile, >= 1 (0: start ignored)
    input  wire [FOLD_W-1:0]        folds,        // reduction folds of the tile, >= 1 (0: start ignored)
    output reg                      busy,
    output wire                     done,
    // weights, tile cycles 0 .. ROWS-1
    output wire                     w_load,
    input  wire [COLS*8-1:0]        w_row,
    // per-column requantization, latched at start
    input  wire [COLS*ACC_W-1:0]    bias,
    input  wire [COLS*MULT_W-1:0]   mult,
    input  wire [COLS*6-1:0]        shift,
    input  wire [COLS*MULT_W-1:0]   neg_mult,
    input  wire [COLS*6-1:0]        neg_shift,
    input  wire                     leaky_en,     // the layer's activation: fused LeakyReLU
    // input vectors
    input  wire                     in_valid,
    output wire                     in_ready,
    input  wire [ROWS*8-1:0]        in_data,
    // output vectors
    output wire                     out_valid,
    input  wire                     out_ready,
    output wire [COLS*8-1:0]        out_data
);

    // |sum of ROWS int8 x int8 products| <= ROWS * 2^14 < 2^(15 + clog2(ROWS)): exact in SUM_W.
    localparam integer SUM_W = 16 + $clog2(ROWS);
    // in-flight limit = output buffer entries (see header)
    localparam integer DEPTH = ROWS + COLS + REQUANT_LATENCY;
    localparam integer AW = $clog2(DEPTH);
    localparam integer CW = $clog2(DEPTH + 1);
    localparam integer LW = $clog2(ROWS) + 1;
    localparam integer VP = ROWS + COLS - 1;  // acceptance -> aligned column results
    // exact sum over < 2^FOLD_W folds (see header)
    localparam integer BUF_W = SUM_W + FOLD_W;
    localparam integer XW = (BUF_W > ACC_W ? BUF_W : ACC_W) + 2;  // buffer + column sum + bias, exact
    localparam integer BI = (MAX_PIX > 1) ? $clog2(MAX_PIX) : 1;  // buffer index width
    localparam integer DW = $clog2(VP + 1);
    // The constants compared with / assigned to counters, sized to their widths (all fit).
    localparam [31:0]     DEPTH_U = DEPTH;
    localparam [31:0]     DEPTH_M1_U = DEPTH - 1;
    localparam [31:0]     ROWS_M1_U = ROWS - 1;
    localparam [31:0]     VP_M1_U = VP - 1;
    localparam [CW:0]     DEPTH_O = DEPTH_U[CW:0];       // credit limit, outstanding's width
    localparam [CW-1:0]   DEPTH_C = DEPTH_U[CW-1:0];     // buffer full, fifo_cnt's width
    localparam [AW-1:0]   DEPTH_M1 = DEPTH_M1_U[AW-1:0]; // last buffer entry, pointer width
    localparam [LW-1:0]   ROWS_M1 = ROWS_M1_U[LW-1:0];   // last weight beat, load_cnt's width
    localparam [DW-1:0]   VP_M1 = VP_M1_U[DW-1:0];       // drain cycles, drain_cnt's width
    localparam [31:0]     MAX_PIX_U = MAX_PIX;  // MAX_PIX as an unsigned word (it is >= 1)

    initial begin
        if (ROWS < 1 || COLS < 1) begin
            $display("ERROR: dla_core: ROWS=%0d COLS=%0d must be >= 1", ROWS, COLS);
            $finish;
        end
        if (ACC_W < 8 || ACC_W > 32) begin
            $display("ERROR: dla_core: ACC_W=%0d is outside 8..32", ACC_W);
            $finish;
        end
        if (MULT_W < 2 || MULT_W > 32) begin
            $display("ERROR: dla_core: MULT_W=%0d is outside 2..32", MULT_W);
            $finish;
        end
        if (REQUANT_LATENCY < 1) begin
            $display("ERROR: dla_core: REQUANT_LATENCY=%0d must be >= 1", REQUANT_LATENCY);
            $finish;
        end
        if (FOLD_W < 1 || MAX_PIX < 1) begin
            $display("ERROR: dla_core: FOLD_W=%0d and MAX_PIX=%0d must be >= 1", FOLD_W, MAX_PIX);
            $finish;
        end
        if (PIX_W < 1) begin
            $display("ERROR: dla_core: PIX_W=%0d must be >= 1", PIX_W);
            $finish;
        end
    end

    // ------------------------------------------------------------------ control
    reg             loading;      // tile cycles 1 .. ROWS-1
    reg [LW-1:0]    load_cnt;     // weight beats taken
    reg [PIX_W-1:0] in_left;      // pixels still to accept
    reg [PIX_W-1:0] out_left;     // beats still to send
    reg [CW:0]      outstanding;  // accepted - sent (last fold)
    reg [PIX_W-1:0]  pix_q;       // the tile's pixels
    reg [FOLD_W-1:0] fold_left;   // folds after the current one
    reg              first_fold;  // the current fold is fold 0
    reg              draining;    // between a non-last fold's last pixel and the next weight phase
    reg [DW-1:0]     drain_cnt;   // cycles of drain left

    wire out_fire = out_valid & out_ready;
    assign done = busy & out_fire & (out_left == {{(PIX_W-1){1'b0}}, 1'b1});
    assign start_ready = ~busy | done;
    wire start_fire = start & start_ready & (pixels != {PIX_W{1'b0}}) & (folds != {FOLD_W{1'b0}});
    wire last_fold = (fold_left == {FOLD_W{1'b0}});
    wire reload = busy & draining & (drain_cnt == {DW{1'b0}});  // next fold's weight beat 0
    assign w_load = start_fire | loading | reload;
    assign in_ready = busy & ~loading & ~draining & (in_left != {PIX_W{1'b0}}) &
                      (~last_fold | (outstanding < DEPTH_O));
    wire in_fire = in_valid & in_ready;
    wire in_last = in_fire & (in_left == {{(PIX_W-1){1'b0}}, 1'b1});  // a fold's last pixel

    reg [COLS*ACC_W-1:0]  bias_q;
    reg [COLS*MULT_W-1:0] mult_q;
    reg [COLS*6-1:0]      shift_q;
    reg [COLS*MULT_W-1:0] nmult_q;
    reg [COLS*6-1:0]      nshift_q;
    reg                   leaky_q;

    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            loading <= 1'b0;
            load_cnt <= {LW{1'b0}};
            in_left <= {PIX_W{1'b0}};
            out_left <= {PIX_W{1'b0}};
            fold_left <= {FOLD_W{1'b0}};
            first_fold <= 1'b0;
            draining <= 1'b0;
            drain_cnt <= {DW{1'b0}};
            pix_q <= {PIX_W{1'b0}};
        end else if (start_fire) begin
            busy <= 1'b1;
            loading <= (ROWS > 1);
            load_cnt <= 1;
            in_left <= pixels;
            out_left <= pixels;
            pix_q <= pixels;
            fold_left <= folds - 1'b1;
            first_fold <= 1'b1;
            draining <= 1'b0;
        end else if (reload) begin  // next fold: weight beat 0 now, pixels again
            draining <= 1'b0;
            loading <= (ROWS > 1);
            load_cnt <= 1;
            in_left <= pix_q;
            fold_left <= fold_left - 1'b1;
            first_fold <= 1'b0;
        end else begin
            if (done) busy <= 1'b0;
            if (loading) begin
                load_cnt <= load_cnt + 1'b1;
                if (load_cnt == ROWS_M1) loading <= 1'b0;
            end
            if (in_fire) in_left <= in_left - 1'b1;
            if (out_fire) out_left <= out_left - 1'b1;
            if (in_last & ~last_fold) begin
                draining <= 1'b1;
                drain_cnt <= VP_M1;
            end else if (draining) begin
                drain_cnt <= drain_cnt - 1'b1;
            end
        end
        if (rst) outstanding <= 0;
        else outstanding <= outstanding + {{CW{1'b0}}, in_fire & last_fold} - {{CW{1'b0}}, out_fire};
        if (start_fire) begin
            bias_q <= bias;
            mult_q <= mult;
            shift_q <= shift;
            nmult_q <= neg_mult;
            nshift_q <= neg_shift;
            leaky_q <= leaky_en;
        end
    end

    // ------------------------------------------------------------------ input skew
    // Row r's activation, delayed r cycles (bubbles enter as zeros).
    wire [ROWS*8-1:0] x_in = in_fire ? in_data : {ROWS*8{1'b0}};
    wire [ROWS*8-1:0] x_skew;

    genvar r, c;
    generate
        for (r = 0; r < ROWS; r = r + 1) begin : g_skew
            if (r == 0) begin : g_direct
                assign x_skew[7:0] = x_in[7:0];
            end else if (r == 1) begin : g_one
                reg [7:0] sk;
                always @(posedge clk) sk <= x_in[15:8];
                assign x_skew[15:8] = sk;
            end else begin : g_chain
                reg [8*r-1:0] sk;  // r stages, newest in the low byte
                always @(posedge clk) sk <= {sk[8*r-9:0], x_in[8*r +: 8]};
                assign x_skew[8*r +: 8] = sk[8*r-1 -: 8];
            end
        end
    endgenerate

    // ------------------------------------------------------------------ PE array
    // PE (r, c) holds w[r][c]; each cycle: a_out <= a_in (to the right),
    // p_out <= p_in + a_in * w (down; p_in = 0 on row 0).  Index of PE (r, c): r*COLS + c.
    // (Arrays of nets, one element per PE: a flat bus would make every PE's update wake every
    // reader of the bus in an event-driven simulator.)
    wire [7:0]       w_arr [0:ROWS*COLS-1];
    wire [7:0]       a_arr [0:ROWS*COLS-1];
    wire [SUM_W-1:0] p_arr [0:ROWS*COLS-1];

    generate
        for (r = 0; r < ROWS; r = r + 1) begin : g_row
            for (c = 0; c < COLS; c = c + 1) begin : g_pe
                reg signed [7:0]     w;
                reg signed [7:0]     a_out;
                reg signed [SUM_W-1:0] p_out;
                wire signed [7:0] a_in;
                wire signed [SUM_W-1:0] p_in;
                wire signed [7:0] w_next;
                if (c == 0) begin : g_left
                    assign a_in = x_skew[8*r +: 8];
                end else begin : g_inner_a
                    assign a_in = a_arr[r*COLS + c - 1];
                end
                if (r == 0) begin : g_top
                    assign p_in = {SUM_W{1'b0}};
                end else begin : g_inner_p
                    assign p_in = p_arr[(r-1)*COLS + c];
                end
                if (r == ROWS - 1) begin : g_bottom
                    assign w_next = w_row[8*c +: 8];  // new weight beats enter the bottom row
                end else begin : g_inner_w
                    assign w_next = w_arr[(r+1)*COLS + c];
                end
                wire signed [SUM_W-1:0] prod = a_in * w;  // exact: |a*w| <= 2^14
                always @(posedge clk) begin
                    if (w_load) w <= w_next;
                    a_out <= a_in;
                    p_out <= p_in + prod;
                end
                assign w_arr[r*COLS + c] = w;
                assign a_arr[r*COLS + c] = a_out;
                assign p_arr[r*COLS + c] = p_out;
            end
        end
    endgenerate

    // Valid of each wavefront: vpipe[VP-1] is high when the aligned column results are a pixel.
    reg [VP-1:0] vpipe;
    generate
        if (VP == 1) begin : g_vp1
            always @(posedge clk) vpipe <= rst ? 1'b0 : in_fire;
        end else begin : g_vpn
            always @(posedge clk) vpipe <= rst ? {VP{1'b0}} : {vpipe[VP-2:0], in_fire};
        end
    endgenerate
    wire acc_valid = vpipe[VP-1];
    // Fold tags travelling with each wavefront: first fold (buffer starts from 0), last fold
    // (the result goes to the requantizer instead of the buffer).
    reg [VP-1:0] fpipe, lpipe;
    generate
        if (VP == 1) begin : g_tp1
            always @(posedge clk) begin
                fpipe <= first_fold;
                lpipe <= last_fold;
            end
        end else begin : g_tpn
            always @(posedge clk) begin
                fpipe <= {fpipe[VP-2:0], first_fold};
                lpipe <= {lpipe[VP-2:0], last_fold};
            end
        end
    endgenerate
    wire acc_first = fpipe[VP-1];
    wire acc_last = lpipe[VP-1];
    wire rq_in_valid = acc_valid & acc_last;

    // ------------------------------------------------------------------ accumulator buffer
    // One word per pixel (COLS partial sums of BUF_W bits); the aligned pixel index counts
    // wavefronts modulo the tile's pixels (every fold sends them in the same order).
    reg [COLS*BUF_W-1:0] accbuf [0:MAX_PIX-1];
    reg [PIX_W-1:0]      acc_idx;
    wire [BI-1:0]        buf_idx = acc_idx[BI-1:0];
    wire [COLS*BUF_W-1:0] buf_rd = accbuf[buf_idx];
    wire [COLS*BUF_W-1:0] buf_wr;
    always @(posedge clk) begin
        if (rst) acc_idx <= {PIX_W{1'b0}};
        else if (acc_valid) acc_idx <= (acc_idx == pix_q - 1'b1) ? {PIX_W{1'b0}} : acc_idx + 1'b1;
        if (acc_valid & ~acc_last) accbuf[buf_idx] <= buf_wr;
    end

    // ------------------------------------------------------------------ deskew, bias, requantizer
    wire [COLS*8-1:0] rq_q;
    /* verilator lint_off UNUSEDSIGNAL */  // every column's valid is the same; column 0's is used
    wire [COLS-1:0]   rq_valid_col;
    /* verilator lint_on UNUSEDSIGNAL */
    wire signed [XW-1:0] acc_max = {{(XW-ACC_W+1){1'b0}}, {(ACC_W-1){1'b1}}};
    wire signed [XW-1:0] acc_min = {{(XW-ACC_W+1){1'b1}}, {(ACC_W-1){1'b0}}};

    generate
        for (c = 0; c < COLS; c = c + 1) begin : g_col
            localparam integer D = COLS - 1 - c;  // deskew registers of this column
            wire [SUM_W-1:0] bottom = p_arr[(ROWS-1)*COLS + c];
            wire signed [SUM_W-1:0] col_sum;
            if (D == 0) begin : g_d0
                assign col_sum = bottom;
            end else if (D == 1) begin : g_d1
                reg [SUM_W-1:0] ds;
                always @(posedge clk) ds <= bottom;
                assign col_sum = ds;
            end else begin : g_dn
                reg [D*SUM_W-1:0] ds;  // D stages, newest in the low word
                always @(posedge clk) ds <= {ds[(D-1)*SUM_W-1:0], bottom};
                assign col_sum = ds[D*SUM_W-1 -: SUM_W];
            end
            wire signed [ACC_W-1:0] b = bias_q[ACC_W*c +: ACC_W];
            // partial sum of the earlier folds (0 in the first) + this fold's column sum: exact
            wire signed [BUF_W-1:0] prev = acc_first ? {BUF_W{1'b0}} : buf_rd[BUF_W*c +: BUF_W];
            wire signed [BUF_W-1:0] part = prev + {{FOLD_W{col_sum[SUM_W-1]}}, col_sum};  // sign-extended; cannot overflow
            assign buf_wr[BUF_W*c +: BUF_W] = part;
            wire signed [XW-1:0] wide = {{(XW-BUF_W){part[BUF_W-1]}}, part} +
                                        {{(XW-ACC_W){b[ACC_W-1]}}, b};  // both sign-extended to XW: exact
            wire signed [ACC_W-1:0] acc = (wide > acc_max) ? acc_max[ACC_W-1:0] :
                                          (wide < acc_min) ? acc_min[ACC_W-1:0] : wide[ACC_W-1:0];
            wire signed [7:0] q_c;
            dla_requant #(.ACC_W(ACC_W), .MULT_W(MULT_W)) u_rq (
                .clk(clk), .rst(rst), .valid_in(rq_in_valid), .acc(acc),
                .mult(mult_q[MULT_W*c +: MULT_W]), .shift(shift_q[6*c +: 6]), .leaky_en(leaky_q),
                .neg_mult(nmult_q[MULT_W*c +: MULT_W]), .neg_shift(nshift_q[6*c +: 6]),
                .valid_out(rq_valid_col[c]), .q(q_c));
            assign rq_q[8*c +: 8] = q_c;
        end
    endgenerate
    wire rq_valid = rq_valid_col[0];

    // ------------------------------------------------------------------ output buffer
    // DEPTH entries with bypass: an empty buffer passes the requantizer's result through in
    // the same cycle; otherwise beats leave in order from the head.
    reg [COLS*8-1:0] fifo [0:DEPTH-1];
    reg [AW-1:0]     rd_ptr, wr_ptr;
    reg [CW-1:0]     fifo_cnt;
    wire fifo_empty = (fifo_cnt == {CW{1'b0}});
    assign out_valid = ~fifo_empty | rq_valid;
    assign out_data = fifo_empty ? rq_q : fifo[rd_ptr];
    wire push = rq_valid & ~(fifo_empty & out_ready);
    wire pop = ~fifo_empty & out_ready;

    always @(posedge clk) begin
        if (rst) begin
            rd_ptr <= {AW{1'b0}};
            wr_ptr <= {AW{1'b0}};
            fifo_cnt <= {CW{1'b0}};
        end else begin
            if (push) begin
                fifo[wr_ptr] <= rq_q;
                wr_ptr <= (wr_ptr == DEPTH_M1) ? {AW{1'b0}} : wr_ptr + 1'b1;
            end
            if (pop) rd_ptr <= (rd_ptr == DEPTH_M1) ? {AW{1'b0}} : rd_ptr + 1'b1;
            fifo_cnt <= fifo_cnt + {{(CW-1){1'b0}}, push} - {{(CW-1){1'b0}}, pop};
        end
    end

    // ------------------------------------------------------------------ simulation checks
    // synthesis translate_off
    // The requantizer's valid must follow acc_valid by exactly REQUANT_LATENCY cycles (the
    // credit limit and the documented tile cycle count rely on it).
    reg [REQUANT_LATENCY-1:0] rq_expect;
    generate
        if (REQUANT_LATENCY == 1) begin : g_chk1
            always @(posedge clk) rq_expect <= rst ? 1'b0 : rq_in_valid;
        end else begin : g_chkn
            always @(posedge clk)
                rq_expect <= rst ? {REQUANT_LATENCY{1'b0}} : {rq_expect[REQUANT_LATENCY-2:0], rq_in_valid};
        end
    endgenerate
    always @(posedge clk) begin
        if (!rst && rq_valid !== rq_expect[REQUANT_LATENCY-1]) begin
            $display("ERROR: dla_core: dla_requant's latency is not REQUANT_LATENCY=%0d", REQUANT_LATENCY);
            $finish;
        end
        if (!rst && start_fire && folds > 1 && {32'd0, pixels} > {{PIX_W{1'b0}}, MAX_PIX_U}) begin
            $display("ERROR: dla_core: a tile of %0d folds has %0d pixels > MAX_PIX=%0d", folds, pixels, MAX_PIX);
            $finish;
        end
        if (!rst && push && fifo_cnt == DEPTH_C) begin
            $display("ERROR: dla_core: output buffer overflow");
            $finish;
        end
    end
    // synthesis translate_on

endmodule

`default_nettype wire
