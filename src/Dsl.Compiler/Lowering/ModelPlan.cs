using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Lowering
{
    /// <summary>How a layer runs at inference.</summary>
    public enum InferenceRole
    {
        /// <summary>Runs its own kernel.</summary>
        Compute,

        /// <summary>Shares its input's memory and does nothing (flatten, dropout).</summary>
        Identity,

        /// <summary>Batch norm folded into the weights of the conv or linear before it.</summary>
        FoldedAway,

        /// <summary>Batch norm after a layer it cannot fold into: a per-channel scale and shift, in its own pass.</summary>
        ScaleShift,

        /// <summary>Batch norm after pooling or an activation: its scale and shift are applied as the producer writes its output.</summary>
        FusedEpilogue,

        /// <summary>Batch norm with track_running_stats: false: batch statistics, as in training.</summary>
        BatchStatistics,

        /// <summary>
        /// ReLU right after a conv or linear (or after a batch norm folded into one), or a 2×2 max pooling right after a
        /// Winograd convolution (or its ReLU): the producer applies it as it writes.
        /// </summary>
        AppliedByProducer,
    }

    public enum StorageKind
    {
        Parameter,
        Buffer,
        Counter,
    }

    /// <summary>A tensor's place in one of the model's flat arrays.</summary>
    public sealed record PlannedTensor(TensorSpec Spec, StorageKind Storage, int Offset);

    /// <summary>Where one layer reads, writes and keeps things. Offsets of batch-scaled regions are per sample.</summary>
    public sealed class LayerPlan
    {
        public LayerPlan(BoundLayer layer) => Layer = layer;

        public BoundLayer Layer { get; }

        /// <summary>Per-sample offset of the layer's input in the training arena.</summary>
        public int Input { get; set; }

        /// <summary>Per-sample offset of the layer's output in the training arena (= Input when it aliases).</summary>
        public int Output { get; set; }

        public bool AliasesInput { get; set; }
        public int Weight { get; set; } = -1;
        public int Bias { get; set; } = -1;
        public int RunningMean { get; set; } = -1;
        public int RunningVar { get; set; } = -1;
        public int Counter { get; set; } = -1;

        /// <summary>Batch norm's saved mean and inverse standard deviation, per channel, for backward.</summary>
        public int SaveMean { get; set; } = -1;
        public int SaveInvStd { get; set; } = -1;

        /// <summary>Per-sample offset of max pooling's argmax indices.</summary>
        public int Indices { get; set; } = -1;

        /// <summary>Per-sample offset of dropout's mask in the training arena.</summary>
        public int Mask { get; set; } = -1;

        public InferenceRole Inference { get; set; } = InferenceRole.Compute;

        /// <summary>For a conv or linear that absorbs the next batch norm: its folded weight and bias in the folded array.</summary>
        public int FoldedWeight { get; set; } = -1;
        public int FoldedBias { get; set; } = -1;

        /// <summary>For a pooling or activation layer: the batch norm whose scale and shift it applies as it writes.</summary>
        public LayerPlan? Epilogue { get; set; }

        /// <summary>
        /// For a linear layer at inference: its weight (folded or not) packed as the GEMM's B operand in the folded
        /// array, refreshed with every fold, so a large batch packs only its input. Dsl.Runtime's
        /// Linear.PackedWeightLength gives the same length, which the tests hold this one to.
        /// </summary>
        public int PackedWeight { get; set; } = -1;

        /// <summary>Floats of the packed weight: in · out, out rounded up to whole 16-column panels.</summary>
        public int PackedWeightLength => Layer.Attributes.InFeatures * ((Layer.Attributes.OutFeatures + 15) / 16 * 16);

        /// <summary>For a conv or linear at inference: the ReLU it applies as it writes its output.</summary>
        public LayerPlan? FusedRelu { get; set; }

        /// <summary>
        /// For a Winograd convolution at inference: the maxpool(2) after it (or after its fused ReLU), applied in its
        /// output transform, where one 2×2 tile is one pooling window.
        /// </summary>
        public LayerPlan? FusedPool { get; set; }

        /// <summary>
        /// For a batch norm with batch statistics in training (not frozen) followed by a ReLU: it writes the
        /// ReLU's output directly (its own output is needed by nothing: batch norm's backward reads its input,
        /// the ReLU's backward its output).
        /// </summary>
        public LayerPlan? TrainingRelu { get; set; }

        /// <summary>For a ReLU in training: the batch norm that writes its output.</summary>
        public LayerPlan? TrainingProducer { get; set; }

        /// <summary>
        /// For a convolution: whether forward and the weight gradient use the direct kernel (Dsl.Runtime's
        /// ConvDirect) rather than the GEMM. Chosen from the constant shapes: no groups, stride and dilation 1,
        /// a reduction (input channels × kernel taps) of at most 32, kernel rows of at most 5 and output rows of
        /// at least 16 — the same rule as ConvDirect.Suits, which the tests hold this one to.
        /// </summary>
        public bool DirectConvolution =>
            Layer.Kind is LayerKind.Conv1d or LayerKind.Conv2d
            && Layer.Attributes.Groups == 1
            && Layer.Attributes.Stride.W == 1 && (Layer.Kind == LayerKind.Conv1d || Layer.Attributes.Stride.H == 1)
            && Layer.Attributes.Dilation.W == 1 && (Layer.Kind == LayerKind.Conv1d || Layer.Attributes.Dilation.H == 1)
            && (long)Layer.Attributes.InChannels * (Layer.Kind == LayerKind.Conv1d ? 1 : Layer.Attributes.Kernel.H) * Layer.Attributes.Kernel.W <= 32
            && Layer.Attributes.Kernel.W <= 5
            && Layer.OutputShape[Layer.OutputShape.Count - 1] >= 16;

        /// <summary>
        /// For a convolution: whether forward and the input gradient use Winograd's F(2×2, 3×3) (Dsl.Runtime's
        /// ConvWinograd) rather than the GEMM. Chosen from the constant shapes: a 2-d 3×3 kernel, stride and
        /// dilation 1, no groups, at least 16 input and 16 output channels and an output of at least 2×2 — the
        /// same rule as ConvWinograd.Suits, which the tests hold this one to.
        /// </summary>
        public bool WinogradConvolution =>
            Layer.Kind == LayerKind.Conv2d
            && Layer.Attributes.Kernel.H == 3 && Layer.Attributes.Kernel.W == 3
            && Layer.Attributes.Stride.H == 1 && Layer.Attributes.Stride.W == 1
            && Layer.Attributes.Dilation.H == 1 && Layer.Attributes.Dilation.W == 1
            && Layer.Attributes.Groups == 1
            && Layer.Attributes.InChannels >= 16 && Layer.Attributes.OutChannels >= 16
            && Layer.OutputShape[Layer.OutputShape.Count - 2] >= 2 && Layer.OutputShape[Layer.OutputShape.Count - 1] >= 2;

        /// <summary>For batch norm: per-channel scale and shift in the folded array (also scratch while folding).</summary>
        public int Scale { get; set; } = -1;
        public int Shift { get; set; } = -1;

        /// <summary>Channels and values per channel per sample, for batch norm and global pooling.</summary>
        public int Channels => Layer.InputShape[0];
        public int Spatial => Layer.InputShape.Skip(1).Aggregate(1, (a, b) => a * b);
    }

    /// <summary>
    /// The memory plan of a model, fixed at compile time: one flat array each for parameters (and,
    /// at the same offsets, gradients), running statistics, batch counters, the training activation
    /// arena (every layer's output kept for backward, per sample × maxBatch), two gradient buffers,
    /// two inference buffers, and the folded weights.
    /// </summary>
    public sealed class ModelPlan
    {
        private ModelPlan(BoundModel model) => Model = model;

        public BoundModel Model { get; }
        public List<LayerPlan> Layers { get; } = new();
        public List<PlannedTensor> Tensors { get; } = new();
        public int ParameterLength { get; private set; }
        public int BufferLength { get; private set; }
        public int CounterLength { get; private set; }

        /// <summary>Floats per sample of the training arena: the input copy, outputs and dropout masks.</summary>
        public int ArenaPerSample { get; private set; }

        /// <summary>Floats per sample of each of the two gradient buffers: the largest activation.</summary>
        public int GradientPerSample { get; private set; }

        /// <summary>Ints per sample for max pooling's argmax.</summary>
        public int IndicesPerSample { get; private set; }

        /// <summary>Floats of batch norm's saved statistics (batch-independent), training and inference apart.</summary>
        public int CacheLength { get; private set; }

        /// <summary>Floats of folded weights, biases, scales and shifts, and of packed linear weights.</summary>
        public int FoldedLength { get; private set; }

        /// <summary>Whether any layer needs <c>Infer</c> to refresh folded storage.</summary>
        public bool HasFolding => FoldedLength > 0;

        public static ModelPlan Create(BoundModel model)
        {
            var plan = new ModelPlan(model);
            plan.Build();
            return plan;
        }

        private void Build()
        {
            int arena = Line(Model.InputLength); // slot 0: a copy of the input, which backward needs
            int current = 0;
            int cache = 0;
            int folded = 0;
            int indices = 0;
            int largest = Model.InputLength;

            foreach (var layer in Model.Layers)
            {
                var p = new LayerPlan(layer) { Input = current };
                foreach (var tensor in layer.Tensors)
                {
                    switch (tensor.Role)
                    {
                        case TensorRole.Weight:
                            p.Weight = ParameterLength;
                            Add(tensor, StorageKind.Parameter, ParameterLength);
                            ParameterLength += tensor.ElementCount;
                            break;
                        case TensorRole.Bias:
                            p.Bias = ParameterLength;
                            Add(tensor, StorageKind.Parameter, ParameterLength);
                            ParameterLength += tensor.ElementCount;
                            break;
                        case TensorRole.RunningMean:
                            p.RunningMean = BufferLength;
                            Add(tensor, StorageKind.Buffer, BufferLength);
                            BufferLength += tensor.ElementCount;
                            break;
                        case TensorRole.RunningVar:
                            p.RunningVar = BufferLength;
                            Add(tensor, StorageKind.Buffer, BufferLength);
                            BufferLength += tensor.ElementCount;
                            break;
                        case TensorRole.NumBatchesTracked:
                            p.Counter = CounterLength;
                            Add(tensor, StorageKind.Counter, CounterLength);
                            CounterLength += 1;
                            break;
                    }
                }

                bool alias = layer.Kind == LayerKind.Flatten || (layer.Kind == LayerKind.Dropout && layer.Attributes.P == 0);
                var previous = Layers.Count > 0 ? Layers[Layers.Count - 1] : null;
                if (alias)
                {
                    p.AliasesInput = true;
                    p.Output = current;
                }
                else if (layer.Kind == LayerKind.Relu && previous is { Layer.IsBatchNorm: true } && !previous.Layer.Attributes.Frozen)
                {
                    // Training: the batch norm writes this ReLU's output as it normalizes, in its own slot (nothing
                    // reads the batch norm's output: its backward needs its input, the ReLU's backward its output).
                    p.Output = current;
                    previous.TrainingRelu = p;
                    p.TrainingProducer = previous;
                }
                else
                {
                    p.Output = arena;
                    arena = Line(arena + layer.OutputLength);
                }

                if (layer.Kind == LayerKind.Dropout && !alias)
                {
                    p.Mask = arena;
                    arena = Line(arena + layer.OutputLength);
                }

                if (layer.Kind is LayerKind.MaxPool1d or LayerKind.MaxPool2d)
                {
                    p.Indices = indices;
                    indices = Line(indices + layer.OutputLength);
                }

                if (layer.IsBatchNorm)
                {
                    p.SaveMean = cache;
                    p.SaveInvStd = cache + Line(p.Channels);
                    cache += 2 * Line(p.Channels);
                }

                largest = System.Math.Max(largest, layer.OutputLength);
                current = p.Output;
                Layers.Add(p);
            }

            // Inference: fold each batch norm into an adjacent preceding conv or linear when it
            // normalizes with running statistics; otherwise apply it as a per-channel scale and shift.
            for (int i = 0; i < Layers.Count; i++)
            {
                var p = Layers[i];
                if (p.AliasesInput) p.Inference = InferenceRole.Identity;
                if (p.Layer.Kind == LayerKind.Dropout) p.Inference = InferenceRole.Identity;
                if (!p.Layer.IsBatchNorm) continue;
                if (!p.Layer.Attributes.TrackRunningStats)
                {
                    p.Inference = InferenceRole.BatchStatistics;
                    continue;
                }

                p.Scale = folded;
                p.Shift = folded + Line(p.Channels);
                folded += 2 * Line(p.Channels);
                var producer = i > 0 ? Layers[i - 1] : null;
                if (producer is not null && producer.Layer.Kind is LayerKind.Conv1d or LayerKind.Conv2d or LayerKind.Linear
                    && producer.Inference == InferenceRole.Compute)
                {
                    p.Inference = InferenceRole.FoldedAway;
                    producer.FoldedWeight = folded;
                    folded = Line(folded + producer.Layer.Tensors[0].ElementCount);
                    producer.FoldedBias = folded;
                    folded += Line(p.Channels);
                }
                else
                {
                    p.Inference = InferenceRole.ScaleShift;
                    var source = Producer(i);
                    if (source is not null && CanCarryEpilogue(source, p))
                    {
                        p.Inference = InferenceRole.FusedEpilogue;
                        source.Epilogue = p;
                    }
                }
            }

            // Every linear layer that computes at inference keeps its weight packed for the GEMM as well.
            foreach (var p in Layers)
            {
                if (p.Layer.Kind != LayerKind.Linear || p.Inference != InferenceRole.Compute) continue;
                p.PackedWeight = folded;
                folded = Line(folded + p.PackedWeightLength);
            }

            // A ReLU that directly follows a conv or linear (possibly through a batch norm folded into it), and
            // carries no batch norm of its own, is applied by that layer at inference: one pass less.
            for (int i = 1; i < Layers.Count; i++)
            {
                var relu = Layers[i];
                if (relu.Layer.Kind != LayerKind.Relu || relu.Inference != InferenceRole.Compute || relu.Epilogue is not null) continue;
                var producer = Layers[i - 1].Inference == InferenceRole.FoldedAway && i >= 2 ? Layers[i - 2] : Layers[i - 1];
                if (producer.Layer.Kind is not (LayerKind.Conv1d or LayerKind.Conv2d or LayerKind.Linear) || producer.Inference != InferenceRole.Compute) continue;
                relu.Inference = InferenceRole.AppliedByProducer;
                producer.FusedRelu = relu;
            }

            // A 2×2, stride-2 max pooling (no padding, dilation or ceil mode, no batch norm of its own) right after a
            // Winograd convolution, or after the ReLU that convolution applies, is applied by it at inference too.
            for (int i = 1; i < Layers.Count; i++)
            {
                var pool = Layers[i];
                var a = pool.Layer.Attributes;
                if (pool.Layer.Kind != LayerKind.MaxPool2d || pool.Inference != InferenceRole.Compute || pool.Epilogue is not null) continue;
                if (a.Kernel != (2, 2) || a.Stride != (2, 2) || a.Padding != (0, 0) || a.Dilation != (1, 1) || a.CeilMode) continue;
                // Step back over the ReLU the convolution applies and the batch norm folded into it.
                int j = i - 1;
                if (j >= 1 && Layers[j].Layer.Kind == LayerKind.Relu && Layers[j].Inference == InferenceRole.AppliedByProducer) j--;
                if (j >= 1 && Layers[j].Inference == InferenceRole.FoldedAway) j--;
                var conv = Layers[j];
                if (!conv.WinogradConvolution || conv.Inference != InferenceRole.Compute) continue;
                // A ReLU stepped over is this convolution's own (the ReLU rule above pairs them the same way).
                if (Layers[i - 1].Layer.Kind == LayerKind.Relu && conv.FusedRelu != Layers[i - 1]) continue;
                pool.Inference = InferenceRole.AppliedByProducer;
                conv.FusedPool = pool;
            }

            ArenaPerSample = arena;
            GradientPerSample = Line(largest);
            IndicesPerSample = indices;
            CacheLength = cache;
            FoldedLength = folded;
        }

        /// <summary>The nearest earlier layer that computes at inference (flatten and dropout only pass data on).</summary>
        private LayerPlan? Producer(int index)
        {
            for (int j = index - 1; j >= 0; j--)
            {
                if (Layers[j].Inference != InferenceRole.Identity) return Layers[j];
            }

            return null;
        }

        /// <summary>
        /// Pooling and activations can apply a batch norm's per-channel scale and shift as they write, provided
        /// the batch norm's channels are the producer's channels (no flatten regrouped them in between).
        /// </summary>
        private static bool CanCarryEpilogue(LayerPlan producer, LayerPlan batchNorm)
        {
            if (producer.Epilogue is not null || producer.Inference != InferenceRole.Compute) return false;
            bool sameGrouping = producer.Layer.OutputShape.SequenceEqual(batchNorm.Layer.InputShape);
            return sameGrouping && producer.Layer.Kind is LayerKind.MaxPool1d or LayerKind.MaxPool2d or LayerKind.AvgPool1d or LayerKind.AvgPool2d
                or LayerKind.GlobalAvgPool or LayerKind.Relu or LayerKind.LeakyRelu or LayerKind.Sigmoid or LayerKind.Tanh;
        }

        /// <summary>
        /// Rounds an offset up to a whole cache line (16 floats), so that every region of the arena, kept and
        /// folded storage starts on a line when the arena does (the runtime allocates it 64-byte aligned):
        /// vector loads and stores that cross cache lines cost extra on every pass.
        /// </summary>
        private static int Line(int offset) => (offset + 15) & ~15;

        private void Add(TensorSpec spec, StorageKind storage, int offset) => Tensors.Add(new PlannedTensor(spec, storage, offset));
    }
}
