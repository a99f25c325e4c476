// The example's networks in TorchSharp: the CIFAR-style ResNets of ResNet.nn (ResNet-20, ResNet-14) in torchvision's
// BasicBlock layout with projection shortcuts, one input channel, [1, 28, 28]; and plain-20 (ResNet-20's layers without
// the skips), for the torch side only.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Examples.FashionMnistResNet;

internal static class TorchModels
{
    private static Conv2d Conv3x3(long inPlanes, long planes, long stride = 1) => nn.Conv2d(inPlanes, planes, 3, stride: stride, padding: 1, bias: false);

    /// <summary>plain-20: 19 conv → bn → relu, global average pooling, linear; children named by position as the unnamed .nn layers.</summary>
    public static nn.Module<Tensor, Tensor> Plain20()
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        void Add(nn.Module<Tensor, Tensor> layer) => layers.Add((layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer));
        void ConvBnRelu(long inPlanes, long planes, long stride = 1)
        {
            Add(Conv3x3(inPlanes, planes, stride));
            Add(nn.BatchNorm2d(planes));
            Add(nn.ReLU());
        }

        ConvBnRelu(1, 16);
        for (int i = 0; i < 6; i++) ConvBnRelu(16, 16);
        ConvBnRelu(16, 32, 2);
        for (int i = 0; i < 5; i++) ConvBnRelu(32, 32);
        ConvBnRelu(32, 64, 2);
        for (int i = 0; i < 5; i++) ConvBnRelu(64, 64);
        Add(nn.AdaptiveAvgPool2d(1));
        Add(nn.Flatten());
        Add(nn.Linear(64, 10));
        return nn.Sequential(layers);
    }

    /// <summary>torchvision's BasicBlock: conv3x3 → bn → relu → conv3x3 → bn, plus the input (or its 1×1 projection), → relu.</summary>
    internal sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1;
        private readonly BatchNorm2d bn1;
        private readonly Conv2d conv2;
        private readonly BatchNorm2d bn2;
        private readonly Sequential? downsample;

        public BasicBlock(long inPlanes, long planes, long stride = 1)
            : base(nameof(BasicBlock))
        {
            conv1 = Conv3x3(inPlanes, planes, stride);
            bn1 = nn.BatchNorm2d(planes);
            conv2 = Conv3x3(planes, planes);
            bn2 = nn.BatchNorm2d(planes);
            if (stride != 1 || inPlanes != planes)
                downsample = nn.Sequential(("0", nn.Conv2d(inPlanes, planes, 1, stride: stride, bias: false)), ("1", nn.BatchNorm2d(planes)));
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            var output = bn2.forward(conv2.forward(nn.functional.relu(bn1.forward(conv1.forward(input)))));
            var identity = downsample is null ? input : downsample.forward(input);
            return nn.functional.relu(output.add_(identity)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// CIFAR-style ResNet on [1, 28, 28] with <c>blocks[i]</c> BasicBlocks in stage i (16, 32, 64 channels): keys conv1.weight,
    /// layer2.0.downsample.0.weight, fc.bias, … as the models of ResNet.nn ([3, 3, 3]: ResNet-20, 272,186 parameters).
    /// </summary>
    internal sealed class ResNet : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1;
        private readonly BatchNorm2d bn1;
        private readonly Sequential layer1;
        private readonly Sequential layer2;
        private readonly Sequential layer3;
        private readonly Linear fc;

        public ResNet(int[] blocks)
            : base(nameof(ResNet))
        {
            conv1 = Conv3x3(1, 16);
            bn1 = nn.BatchNorm2d(16);
            layer1 = Stage(16, 16, 1, blocks[0]);
            layer2 = Stage(16, 32, 2, blocks[1]);
            layer3 = Stage(32, 64, 2, blocks[2]);
            fc = nn.Linear(64, 10);
            RegisterComponents();
        }

        /// <summary>The first block changes the shape (stride, channels), the others keep it; children "0", "1", ….</summary>
        private static Sequential Stage(long inPlanes, long planes, long stride, int count) =>
            nn.Sequential(Enumerable.Range(0, count).Select(i => (
                i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                (nn.Module<Tensor, Tensor>)(i == 0 ? new BasicBlock(inPlanes, planes, stride) : new BasicBlock(planes, planes))))
                .ToArray());

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            var x = nn.functional.relu(bn1.forward(conv1.forward(input)));
            x = layer3.forward(layer2.forward(layer1.forward(x)));
            x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
            return fc.forward(x).MoveToOuterDisposeScope();
        }
    }
}
